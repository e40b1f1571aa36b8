"""Previews: the methods of a loaded model, what auto picks and why, TAESD found or not, the fitted map, x0."""

import pytest
import torch

from diffusers_tui.engine import Engine, LoadOptions, RequestError
from diffusers_tui.engine.preview import latent as preview
from diffusers_tui.engine.sampling.estimates import estimate_x0


@pytest.fixture(scope="module")
def tiny_taesd(tmp_path_factory):
    """A TAESD folder for 4-channel latents at scale 2, built from a config (random weights)."""
    from diffusers import AutoencoderTiny

    folder = tmp_path_factory.mktemp("decoders") / "taesd"
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                    num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1)).save_pretrained(folder)
    return folder


def test_sd1_family_uses_published_factors_and_says_where_to_get_its_taesd(engine, tiny_sd):
    loaded = engine.loaded_model(str(tiny_sd))
    assert loaded.family == "sd1" and loaded.decoders.latent_map().fit_error is None
    assert loaded.decoders.methods == ("latent", "vae")  # no TAESD in this machine's cache
    assert any("hf download madebyollin/taesd" in note for note in loaded.notes)
    with pytest.raises(RequestError, match="preview_method: there is no TAESD decoder .*hf download madebyollin/taesd"):
        loaded.decoders.resolve("taesd")


def test_a_taesd_folder_from_the_settings_is_found_and_used(tiny_sd, tiny_taesd):
    engine = Engine(LoadOptions(taesd_folder=str(tiny_taesd.parent)))  # a folder of them, by repo name
    summary = engine.load(str(tiny_sd))
    assert summary.preview_methods == ("latent", "taesd", "vae") and summary.preview_note == ""
    result = engine.run(engine_request(tiny_sd, "taesd"))
    assert engine.preview(result.frames[0], "taesd").size == (16, 16)  # full size, from the tiny decoder
    assert engine.preview(result.frames[0], "latent").size == (8, 8)


def engine_request(model, method):
    from diffusers_tui.engine import GenerationRequest

    return GenerationRequest(prompt="a red square", model=str(model), steps=2, seed=1, preview_method=method)


def test_auto_is_the_most_faithful_method_within_the_frame_budget(tiny_sd, tiny_taesd, monkeypatch):
    decoders = Engine(LoadOptions(taesd_folder=str(tiny_taesd))).loaded_model(str(tiny_sd)).decoders
    native = (4, 8, 8)
    costs = {}
    monkeypatch.setattr(decoders, "measure", lambda method, latent: costs[method])
    for costs_now, expected in (({"taesd": 1.0, "vae": 5.0}, "vae"), ({"taesd": 1.0, "vae": 50.0}, "taesd"),
                                ({"taesd": 20.0, "vae": 50.0}, "latent")):
        costs.clear()
        costs.update(costs_now)
        decoders.costs.clear()
        decoders.choose_auto(native)
        assert decoders.auto == expected, costs_now
        assert f"previews: auto is {expected}" in decoders.notes[-1] or expected == "latent"
    assert "vae" not in decoders.costs  # over budget already with the tiny decoder: the full decode is not timed


def test_the_demo_brings_its_own_tiny_decoder_and_auto_uses_it_when_it_fits_the_budget(engine):
    """Auto is the best method whose measured frame fits the budget: the demo's TAESD where this machine
    decodes a frame in time (most do, in about 4 ms), else the latent map; the note gives the timing."""
    import re

    summary = engine.load("demo")
    assert "taesd" in summary.preview_methods
    note = next(note for note in summary.notes if note.startswith("previews: auto is "))
    taesd_ms, budget_ms = (float(value) for value in re.search(r"taesd ([0-9.]+) ms.*budget ([0-9.]+) ms", note).groups())
    if abs(taesd_ms - budget_ms) > 0.05:  # the note rounds to 0.1 ms: a tie there could go either way
        assert summary.preview_auto == ("taesd" if taesd_ms <= budget_ms else "latent"), note
    else:
        assert summary.preview_auto in ("taesd", "latent"), note


def test_the_fitted_map_is_made_on_first_use_with_its_error_reported(engine):
    loaded = engine.loaded_model("demo")
    assert loaded.family == "fitted"
    fitted = loaded.decoders.latent_map()
    assert 0 < fitted.fit_error < 1 and loaded.decoders.latent_map() is fitted
    assert any("RMS error" in note for note in loaded.notes)


def test_fitted_map_recovers_a_linear_decoder_exactly():
    class LinearVae(torch.nn.Module):
        """A VAE whose decoder is linear, so the fit must find its matrix."""

        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"scaling_factor": 0.5, "latent_channels": 4})()
            self.matrix = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)) * 0.2

        device, dtype = torch.device("cpu"), torch.float32

        def encode(self, images):
            pooled = torch.nn.functional.avg_pool2d(images, 2)
            latent = torch.cat([pooled, pooled[:, :1] ** 2], 1)  # four independent channels
            dist = type("D", (), {"mode": lambda s: latent})()
            return type("E", (), {"latent_dist": dist})()

        def decode(self, latents):
            rgb = torch.einsum("nchw,cr->nrhw", latents, self.matrix)
            return type("O", (), {"sample": torch.nn.functional.interpolate(rgb, scale_factor=2)})()

    vae = LinearVae()
    fitted = preview.fit_latent_map(vae, (16, 16))
    assert fitted.fit_error < 1e-3
    latent = torch.randn(4, 8, 8) * 0.5
    expected = torch.einsum("chw,cr->rhw", latent / 0.5, vae.matrix)
    assert torch.allclose(fitted.decode(latent).clamp(-1, 1), expected.clamp(-1, 1), atol=1e-3)


def test_x0_estimate_inverts_the_forward_process():
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    x0 = torch.randn(1, 4, 8, 8)
    noise = torch.randn(1, 4, 8, 8)
    ddim = DDIMScheduler()
    t = torch.tensor([500])
    noisy = ddim.add_noise(x0, noise, t)
    assert torch.allclose(estimate_x0(ddim, noise, noisy, 500, None), x0, atol=1e-4)
    euler = EulerDiscreteScheduler()
    euler.set_timesteps(10)
    sigma = float(euler.sigmas[3])
    assert torch.allclose(estimate_x0(euler, noise, x0 + sigma * noise, euler.timesteps[3], sigma),
                          x0, atol=1e-4)

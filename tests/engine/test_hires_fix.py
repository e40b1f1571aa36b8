"""A1111's hires fix: first pass, upscale, img2img second pass; one run to the live pane and the scrubber."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusers_tui.engine import GenerationRequest, RequestError
from diffusers_tui.engine.files.reading import parse_a1111
from diffusers_tui.engine.files.recipe import read_parameters

PROMPT = "a red circle on a blue background"


def _decoded(engine, latents) -> np.ndarray:
    pipe = engine.loaded_model("demo").pipeline
    with torch.inference_mode():
        pixels = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    return ((pixels[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hires_doubles_the_size_and_the_second_pass_starts_from_the_upscale(engine, seed):
    first = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=10, seed=seed))
    snapshots = []
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=10, seed=seed, hires_scale=2,
                                          hires_steps=4, strength=0.05), on_step=snapshots.append)
    assert result.image.size == (128, 128) and result.recipe["width"] == 64
    assert result.model_calls == result.total_calls == 14
    # At a strength of 0.05 the second pass barely moves: it lands next to its start, the upscaled latents.
    side = first.latents.shape[-1] * 2
    upscaled = torch.nn.functional.interpolate(first.latents, size=(side, side), mode="bilinear")
    landed = np.asarray(result.image, dtype=float)
    assert np.abs(landed - _decoded(engine, upscaled)).mean() < 6
    other = engine.run(GenerationRequest(prompt="a green square on a yellow background", scheduler="Euler", steps=10,
                                         seed=seed))
    other_up = torch.nn.functional.interpolate(other.latents, size=(side, side), mode="bilinear")
    assert np.abs(landed - _decoded(engine, other_up)).mean() > 20
    # One run: the second pass's calls count on from the first's, and the scrubber has both passes' frames.
    assert [s.step for s in snapshots] == list(range(1, 15)) and {s.total for s in snapshots} == {14}
    sizes = {frame.latents.x0.shape[-1] for frame in result.frames}
    assert len(result.frames) == 14 and sizes == {side // 2, side}


def test_the_pixel_upscalers_decode_resize_and_encode(engine):
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler="DPM++ 2M", steps=8, seed=4, hires_scale=1.5,
                                          hires_upscaler="lanczos", strength=0.5))
    assert result.image.size == (96, 96) and result.request.hires_upscaler == "Lanczos"
    # A1111's fix-steps rule: exactly the hires steps (here the first pass's 8), whatever the strength.
    assert result.recipe["hires"]["model_calls"] == 8 and result.model_calls == 16


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_a_batch_through_the_hires_fix_is_each_images_own_hires_run(engine, upscaler):
    base = dict(prompt=PROMPT, scheduler="Euler a", steps=5, seed=3, hires_scale=2, hires_steps=3,
                hires_upscaler=upscaler)
    batch = engine.run(GenerationRequest(**base, batch_size=2))
    assert batch.image.size == (256, 128) and batch.model_calls == 8  # both passes, both images in each call
    for item in batch.batch:
        alone = engine.run(GenerationRequest(**{**base, "seed": item.request.seed}))
        assert np.abs(np.asarray(alone.image, dtype=int) - np.asarray(item.image, dtype=int)).max() <= 1
        assert item.recipe["hires"]["scheduler_config"]["seed"] == item.request.seed  # its snippet re-runs it


def test_the_infotext_is_a1111s_and_reads_back_to_the_same_two_passes(engine, tmp_path):
    request = GenerationRequest(prompt=PROMPT, scheduler="Euler a", steps=6, seed=9, hires_scale=2, hires_steps=3,
                                hires_upscaler="Latent (bicubic antialiased)", strength=0.6)
    result = engine.run(request)
    png = engine.save(result, tmp_path)
    parameters = read_parameters(png)
    assert ("Size: 64x64" in parameters and "Denoising strength: 0.6, Hires upscale: 2, Hires steps: 3, "
            "Hires upscaler: Latent (bicubic antialiased)" in parameters)
    again = engine.run(parse_a1111(parameters).request())
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))


def test_a1111s_hires_fields_turn_it_on_as_a1111_does():
    line = "x\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Denoising strength: 0.4, {}"
    read = parse_a1111(line.format("Hires upscaler: R-ESRGAN 4x+")).fields
    assert (read["hires_scale"], read["hires_upscaler"], read["strength"]) == (2.0, "Lanczos", 0.4)
    assert parse_a1111(line.format("Hires resize: 96x96")).fields["hires_scale"] == 1.5
    assert "hires_scale" not in parse_a1111(line.format("Hires upscale: 2").replace("Denoising strength: 0.4, ",
                                                                                     "")).fields


def test_what_the_hires_fix_cannot_do_is_said_in_one_line(engine, tiny_ddpm, tmp_path):
    for fields, words in (({"hires_scale": 5}, "hires_scale: 5 is outside 1 to 4"),
                          ({"hires_scale": 2, "hires_upscaler": "4x-UltraSharp"}, "not an upscaler here"),
                          ({"hires_scale": 2, "init_image": "x.png"}, "leave out the init image")):
        with pytest.raises(RequestError, match=words):
            GenerationRequest(prompt=PROMPT, **fields)
    with pytest.raises(RequestError, match=r"hires_scale: 1.3 makes 83x83 from 64x64, not a multiple of"):
        engine.run(GenerationRequest(prompt=PROMPT, steps=2, hires_scale=1.3))
    with pytest.raises(RequestError, match="for pipeline models"):
        engine.run(GenerationRequest(model=str(tiny_ddpm), steps=2, hires_scale=2))


@pytest.mark.slow
def test_hires_snippets_run_as_written_and_save_the_same_pixels(engine, tmp_path):
    from tests.engine.test_reproduce_snippets import _assert_same_pixels, _run_snippets

    saved = {}
    for name, scheduler, upscaler, extra in (
            ("latent", "Euler", "Latent", {}), ("lanczos", "DPM++ 2M", "Lanczos", {}),
            ("own", None, "Latent (nearest)", {}),
            ("gpu-noise", "Euler a", "Latent", {"noise": "A1111 GPU", "guidance_rescale": 0.5, "pag_scale": 1.5})):
        request = GenerationRequest(prompt=PROMPT, scheduler=scheduler, steps=5, seed=2, hires_scale=2,
                                    hires_steps=3, hires_upscaler=upscaler, strength=0.5, **extra)
        saved[name] = engine.save(engine.run(request), tmp_path / "out")
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))

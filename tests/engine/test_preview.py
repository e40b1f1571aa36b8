"""Previews: published factors by family, a fitted map with its error, x0 estimates."""

import torch

from diffusers_tui.engine.preview import latent as preview
from diffusers_tui.engine.sampling.estimates import estimate_x0


def test_sd1_family_uses_published_factors(engine, tiny_sd):
    loaded = engine.loaded_model(str(tiny_sd))
    assert loaded.family == "sd1" and loaded.previewer.fit_error is None


def test_unknown_vae_gets_a_fitted_map_with_its_error_reported(engine):
    loaded = engine.loaded_model("demo")
    assert loaded.family == "fitted"
    assert 0 < loaded.previewer.fit_error < 1
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
    latents = torch.randn(1, 4, 8, 8) * 0.5
    expected = torch.einsum("chw,cr->rhw", latents[0] / 0.5, vae.matrix)
    shown = torch.tensor(list(fitted.to_image(latents).getdata()), dtype=torch.float32).reshape(8, 8, 3)
    assert torch.allclose(shown.permute(2, 0, 1) / 127.5 - 1, expected.clamp(-1, 1), atol=0.02)


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

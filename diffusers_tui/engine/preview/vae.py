"""The faithful preview: a full decode of the latent through the model's own VAE."""

from __future__ import annotations

import torch


def vae_decode(vae, latent: torch.Tensor) -> torch.Tensor:
    """(C, h, w) latent as the denoiser sees it -> (3, H, W) image in [-1, 1], as the pipeline decodes."""
    config = vae.config
    latents = latent[None].to(vae.device, vae.dtype) / config.scaling_factor
    shift = getattr(config, "shift_factor", None)
    if shift:
        latents = latents + shift
    return vae.decode(latents).sample[0]

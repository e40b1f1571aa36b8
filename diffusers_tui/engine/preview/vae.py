"""The faithful preview: a full decode of the latent through the model's own VAE."""

from __future__ import annotations

import torch

from diffusers_tui.engine.preview.images import tensor_to_image


def decode_preview(loaded, latents: torch.Tensor):
    vae = loaded.pipeline.vae
    with torch.no_grad():
        decoded = vae.decode(latents[:1].to(vae.dtype) / vae.config.scaling_factor).sample
    return tensor_to_image(decoded[0])

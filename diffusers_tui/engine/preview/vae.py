"""The faithful preview: a full decode through the model's own VAE, and the VAE's latent space.

A recorded latent is (C, h, w) as the denoiser sees it (unpacked by its family). Three
kinds of VAE read it back differently, as their pipelines do:
- scaled (SD, SDXL, SD3, Flux, Sana's DC-AE): divided by `scaling_factor`, plus `shift_factor`;
- normalised per channel (Qwen-Image's Wan-style VAE): times `latents_std`, plus `latents_mean`,
  decoded as a one-frame video;
- unscaled (Flux.2's): its family's unpack already undid its batch norm; decoded as it is.
"""

from __future__ import annotations

import torch


def latent_channels(vae) -> int:
    config = vae.config
    return int(getattr(config, "latent_channels", None) or config.z_dim)


def normalised(vae) -> bool:
    """Whether the VAE's latents are normalised per channel (a Wan-style VAE) rather than scaled."""
    config = vae.config
    return getattr(config, "latents_mean", None) is not None and not hasattr(config, "scaling_factor")


def _video(vae) -> bool:
    return hasattr(vae.config, "temperal_downsample")  # Wan-style VAEs decode (B, C, frames, H, W)


def _channel_stats(vae, latents: torch.Tensor):
    shape = (1, -1) + (1,) * (latents.ndim - 2)
    mean = torch.tensor(vae.config.latents_mean, device=latents.device, dtype=latents.dtype).view(shape)
    std = torch.tensor(vae.config.latents_std, device=latents.device, dtype=latents.dtype).view(shape)
    return mean, std


def to_vae(vae, latents: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) denoiser latents -> what `vae.decode` takes."""
    config = vae.config
    if normalised(vae):
        mean, std = _channel_stats(vae, latents)
        latents = latents * std + mean
    elif getattr(config, "scaling_factor", None) is not None:
        latents = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
    return latents[:, :, None] if _video(vae) else latents


def from_vae(vae, latents: torch.Tensor) -> torch.Tensor:
    """What `vae.encode` gives -> (B, C, h, w) denoiser latents (the inverse of to_vae)."""
    config = vae.config
    if _video(vae):
        latents = latents[:, :, 0]
    if normalised(vae):
        mean, std = _channel_stats(vae, latents)
        return (latents - mean) / std
    if getattr(config, "scaling_factor", None) is not None:
        return (latents - (getattr(config, "shift_factor", None) or 0.0)) * config.scaling_factor
    return latents


def decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) denoiser latents -> (B, 3, H, W) images in [-1, 1]."""
    images = vae.decode(to_vae(vae, latents)).sample
    return images[:, :, 0] if images.ndim == 5 else images


def encode(vae, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images in [-1, 1] -> (B, C, h, w) denoiser latents (the posterior's mode)."""
    if _video(vae):
        images = images[:, :, None]
    encoded = vae.encode(images)
    dist = getattr(encoded, "latent_dist", None)
    latents = dist.mode() if dist is not None else encoded.latent  # DC-AE gives latents, not a distribution
    return from_vae(vae, latents)


def vae_decode(vae, latent: torch.Tensor) -> torch.Tensor:
    """(C, h, w) latent as the denoiser sees it -> (3, H, W) image in [-1, 1], as the pipeline decodes."""
    return decode(vae, latent[None].to(vae.device, vae.dtype))[0]

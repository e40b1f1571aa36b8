"""The cheapest preview (method "latent"): a linear latent->RGB map, published per VAE family or fitted.

A preview never touches the live latent: every operation here is out of place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

# Published latent->RGB factors for the scaled latents the UNet sees (ComfyUI's
# latent_formats.py): rows are latent channels, columns R, G, B; output in [-1, 1].
SD1_FACTORS = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]
SDXL_FACTORS = [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
]
SDXL_BIAS = [0.1084, -0.0175, -0.0011]
FIT_IMAGES = 8
#: A fitted map worse than this (RMS, [0, 1] units) shows visibly wrong colours: the
#: load note says so when "auto" has nothing better to use.
GOOD_FIT_ERROR = 0.05


@dataclass
class LatentPreviewer:
    """Maps a (C, h, w) latent to RGB with a (C, 3) matrix and a bias, at latent resolution."""

    factors: torch.Tensor
    bias: torch.Tensor
    family: str
    #: RMS error in [0, 1] units of this map against a full VAE decode (fitted maps only).
    fit_error: float | None = None
    #: Seconds one full VAE decode of one image took when the map was fitted.
    decode_s: float | None = None

    @property
    def trustworthy(self) -> bool:
        return self.fit_error is None or self.fit_error <= GOOD_FIT_ERROR

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """(C, h, w) latent -> (3, h, w) image in [-1, 1], at latent resolution."""
        latent = latent.float()
        rgb = torch.einsum("chw,cr->hwr", latent, self.factors.to(latent.device)) + self.bias.to(latent.device)
        return rgb.permute(2, 0, 1)


def published_map(family: str) -> LatentPreviewer | None:
    """ComfyUI's published map for a known latent family, or None."""
    if family == "sd1":
        return LatentPreviewer(torch.tensor(SD1_FACTORS), torch.zeros(3), family)
    if family == "sdxl":
        return LatentPreviewer(torch.tensor(SDXL_FACTORS), torch.tensor(SDXL_BIAS), family)
    return None


def detect_family(vae) -> str:
    config = vae.config
    if config.latent_channels == 4 and math.isclose(config.scaling_factor, 0.18215, rel_tol=1e-3):
        return "sd1"
    if config.latent_channels == 4 and math.isclose(config.scaling_factor, 0.13025, rel_tol=1e-3):
        return "sdxl"
    return "fitted"


@torch.no_grad()
def fit_latent_map(vae, size: tuple[int, int], seed: int = 0) -> LatentPreviewer:
    """Least-squares latent->RGB map for an unknown VAE, from a few encode/decode round trips.

    The inputs are smooth random colour fields, so the latents look like real image
    latents; the targets are the full decodes pooled to latent resolution, so the map
    imitates exactly what the saved image would show. Returns the map with its error.
    """
    generator = torch.Generator().manual_seed(seed)
    width, height = size
    device, dtype = vae.device, vae.dtype
    coarse = torch.rand((FIT_IMAGES, 3, 4, 4), generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    scale = vae.config.scaling_factor
    latents = vae.encode(images.to(device, dtype)).latent_dist.mode() * scale
    started = time.perf_counter()
    vae.decode(latents[:1] / scale)
    decode_s = time.perf_counter() - started
    decoded = vae.decode(latents / scale).sample.float().clamp(-1, 1)
    pooled = torch.nn.functional.adaptive_avg_pool2d(decoded, latents.shape[-2:])
    x = latents.float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    y = pooled.permute(0, 2, 3, 1).reshape(-1, 3)
    train, held_out = slice(0, x.shape[0] * 3 // 4), slice(x.shape[0] * 3 // 4, None)
    design = torch.cat([x, torch.ones(x.shape[0], 1, device=x.device)], dim=1)
    solution = torch.linalg.lstsq(design[train].cpu(), y[train].cpu()).solution
    predicted = design[held_out].cpu() @ solution
    error = float(((predicted.clamp(-1, 1) - y[held_out].cpu()) / 2).pow(2).mean().sqrt())
    return LatentPreviewer(solution[:-1], solution[-1], "fitted", fit_error=error, decode_s=decode_s)

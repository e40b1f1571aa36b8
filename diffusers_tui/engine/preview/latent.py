"""The cheapest preview (method "latent"): a linear latent->RGB map, published per VAE family or fitted.

A preview never touches the live latent: every operation here is out of place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from diffusers_tui.engine.preview import vae as vae_latents

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
#: 16-channel latents: SD 3.x (scaling 1.5305, shift 0.0609) and Flux (0.3611, 0.1159).
SD3_FACTORS = [
    [-0.0922, -0.0175, 0.0749], [0.0311, 0.0633, 0.0954], [0.1994, 0.0927, 0.0458], [0.0856, 0.0339, 0.0902],
    [0.0587, 0.0272, -0.0496], [-0.0006, 0.1104, 0.0309], [0.0978, 0.0306, 0.0427], [-0.0042, 0.1038, 0.1358],
    [-0.0194, 0.0020, 0.0669], [-0.0488, 0.0130, -0.0268], [0.0922, 0.0988, 0.0951], [-0.0278, 0.0524, -0.0542],
    [0.0332, 0.0456, 0.0895], [-0.0069, -0.0030, -0.0810], [-0.0596, -0.0465, -0.0293], [-0.1448, -0.1463, -0.1189],
]
SD3_BIAS = [0.2394, 0.2135, 0.1925]
FLUX_FACTORS = [
    [-0.0346, 0.0244, 0.0681], [0.0034, 0.0210, 0.0687], [0.0275, -0.0668, -0.0433], [-0.0174, 0.0160, 0.0617],
    [0.0859, 0.0721, 0.0329], [0.0004, 0.0383, 0.0115], [0.0405, 0.0861, 0.0915], [-0.0236, -0.0185, -0.0259],
    [-0.0245, 0.0250, 0.1180], [0.1008, 0.0755, -0.0421], [-0.0515, 0.0201, 0.0011], [0.0428, -0.0012, -0.0036],
    [0.0817, 0.0765, 0.0749], [-0.1264, -0.0522, -0.1103], [-0.0280, -0.0881, -0.0499], [-0.1262, -0.0982, -0.0778],
]
FLUX_BIAS = [-0.0329, -0.0718, -0.0851]
#: Wan 2.1's VAE (Qwen-Image's), on its per-channel normalised latents.
WAN21_FACTORS = [
    [-0.1299, -0.1692, 0.2932], [0.0671, 0.0406, 0.0442], [0.3568, 0.2548, 0.1747], [0.0372, 0.2344, 0.1420],
    [0.0313, 0.0189, -0.0328], [0.0296, -0.0956, -0.0665], [-0.3477, -0.4059, -0.2925], [0.0166, 0.1902, 0.1975],
    [-0.0412, 0.0267, -0.1364], [-0.1293, 0.0740, 0.1636], [0.0680, 0.3019, 0.1128], [0.0032, 0.0581, 0.0639],
    [-0.1251, 0.0927, 0.1699], [0.0060, -0.0633, 0.0005], [0.3477, 0.2275, 0.2950], [0.1984, 0.0913, 0.1861],
]
WAN21_BIAS = [-0.1835, -0.0868, -0.3360]
WAN21_MEAN_FIRST = -0.7571  # the first of its published per-channel means: how the VAE is recognised
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
    if family == "sd3":
        return LatentPreviewer(torch.tensor(SD3_FACTORS), torch.tensor(SD3_BIAS), family)
    if family == "flux":
        return LatentPreviewer(torch.tensor(FLUX_FACTORS), torch.tensor(FLUX_BIAS), family)
    if family == "wan":
        return LatentPreviewer(torch.tensor(WAN21_FACTORS), torch.tensor(WAN21_BIAS), family)
    return None


def detect_family(vae) -> str:
    config = vae.config
    if vae_latents.normalised(vae) and vae_latents.latent_channels(vae) == 16 \
            and math.isclose(config.latents_mean[0], WAN21_MEAN_FIRST, rel_tol=1e-3):
        return "wan"  # the Wan 2.1 VAE, which Qwen-Image uses
    if getattr(config, "scaling_factor", None) is None:
        return "fitted"
    if config.latent_channels == 4 and math.isclose(config.scaling_factor, 0.18215, rel_tol=1e-3):
        return "sd1"
    if config.latent_channels == 4 and math.isclose(config.scaling_factor, 0.13025, rel_tol=1e-3):
        return "sdxl"
    shift = getattr(config, "shift_factor", None) or 0.0
    if config.latent_channels == 16 and math.isclose(config.scaling_factor, 1.5305, rel_tol=1e-3) and math.isclose(
            shift, 0.0609, rel_tol=1e-2):
        return "sd3"
    if config.latent_channels == 16 and math.isclose(config.scaling_factor, 0.3611, rel_tol=1e-3) and math.isclose(
            shift, 0.1159, rel_tol=1e-2):
        return "flux"
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
    latents = vae_latents.encode(vae, images.to(device, dtype))
    started = time.perf_counter()
    vae_latents.decode(vae, latents[:1])
    decode_s = time.perf_counter() - started
    decoded = vae_latents.decode(vae, latents).float().clamp(-1, 1)
    pooled = torch.nn.functional.adaptive_avg_pool2d(decoded, latents.shape[-2:])
    x = latents.float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    y = pooled.permute(0, 2, 3, 1).reshape(-1, 3)
    train, held_out = slice(0, x.shape[0] * 3 // 4), slice(x.shape[0] * 3 // 4, None)
    design = torch.cat([x, torch.ones(x.shape[0], 1, device=x.device)], dim=1)
    solution = torch.linalg.lstsq(design[train].cpu(), y[train].cpu()).solution
    predicted = design[held_out].cpu() @ solution
    error = float(((predicted.clamp(-1, 1) - y[held_out].cpu()) / 2).pow(2).mean().sqrt())
    return LatentPreviewer(solution[:-1], solution[-1], "fitted", fit_error=error, decode_s=decode_s)

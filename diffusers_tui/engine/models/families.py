"""One adapter per model family: what differs between them (size rules now; latents, guidance next).

The engine asks the family of a loaded model rather than reading `pipeline.unet` itself,
so a new family (a transformer pipeline, say) is one adapter here.
"""

from __future__ import annotations


class UNetPipelineFamily:
    """Stable Diffusion style pipelines: a UNet2DConditionModel on a VAE's latents."""

    name = "unet-pipeline"

    @staticmethod
    def native_size(loaded) -> tuple[int, int]:
        pipe = loaded.pipeline
        return _side_to_size(pipe.unet.config.sample_size, pipe.vae_scale_factor)

    @staticmethod
    def size_multiple(loaded) -> int:
        pipe = loaded.pipeline
        # Each down block halves the latent; the VAE scales it by its own factor.
        return 2 ** (len(pipe.unet.config.block_out_channels) - 1) * pipe.vae_scale_factor


class PixelUNetFamily:
    """A bare UNet2DModel, stepped by hand on pixels."""

    name = "pixel-unet"

    @staticmethod
    def native_size(loaded) -> tuple[int, int]:
        return _side_to_size(loaded.unet.config.sample_size, 1)

    @staticmethod
    def size_multiple(loaded) -> int:
        return 2 ** (len(loaded.unet.config.block_out_channels) - 1)


def _side_to_size(side, scale: int) -> tuple[int, int]:
    """(width, height) from a config's sample_size: one side, or (height, width)."""
    if isinstance(side, (list, tuple)):
        return int(side[1]) * scale, int(side[0]) * scale
    return int(side) * scale, int(side) * scale


def family_of(loaded):
    """The adapter for a loaded model."""
    return UNetPipelineFamily if loaded.pipeline is not None else PixelUNetFamily

"""One adapter per model family: size rules, latent packing, and the x0 estimate of its prediction type.

The engine asks the family of a loaded model rather than reading `pipeline.unet` itself:
a UNet pipeline (SD 1.x/2.x, SDXL), a transformer pipeline (SD3, Flux, Sana, Chroma,
Qwen-Image...), or a bare UNet2DModel stepped by hand.
"""

from __future__ import annotations

import inspect


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

    @staticmethod
    def unpack(pipe, latents, width: int, height: int):
        return latents


class TransformerPipelineFamily:
    """Transformer pipelines on a VAE's latents: SD3, Flux, Chroma, Sana, Qwen-Image and the like.

    Some keep their latents packed into patch tokens (Flux, Chroma, Qwen-Image): the
    pipeline's own `_unpack_latents` turns them back into (C, h, w) for previews.
    """

    name = "transformer-pipeline"

    @staticmethod
    def native_size(loaded) -> tuple[int, int]:
        pipe = loaded.pipeline
        side = getattr(pipe, "default_sample_size", None) or getattr(pipe.transformer.config, "sample_size", None)
        return _side_to_size(side or 128, pipe.vae_scale_factor)

    @staticmethod
    def size_multiple(loaded) -> int:
        pipe = loaded.pipeline
        # Latents are cut into patches of patch_size (Flux packs 2x2 whatever its config says).
        patch = getattr(pipe.transformer.config, "patch_size", 1) or 1
        packed = 2 if hasattr(pipe, "_unpack_latents") else 1
        return pipe.vae_scale_factor * max(int(patch), packed)

    @staticmethod
    def unpack(pipe, latents, width: int, height: int):
        """(B, C, h, w) latents, from the packed tokens a Flux-like pipeline steps."""
        if latents is None or latents.ndim != 3 or not hasattr(pipe, "_unpack_latents"):
            return latents
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)


class PixelUNetFamily:
    """A bare UNet2DModel, stepped by hand on pixels."""

    name = "pixel-unet"

    @staticmethod
    def native_size(loaded) -> tuple[int, int]:
        return _side_to_size(loaded.unet.config.sample_size, 1)

    @staticmethod
    def size_multiple(loaded) -> int:
        return 2 ** (len(loaded.unet.config.block_out_channels) - 1)

    @staticmethod
    def unpack(pipe, latents, width: int, height: int):
        return latents


def _side_to_size(side, scale: int) -> tuple[int, int]:
    """(width, height) from a config's sample_size: one side, or (height, width)."""
    if isinstance(side, (list, tuple)):
        return int(side[1]) * scale, int(side[0]) * scale
    return int(side) * scale, int(side) * scale


def family_of(loaded):
    """The adapter for a loaded model."""
    if loaded.pipeline is None:
        return PixelUNetFamily
    return TransformerPipelineFamily if getattr(loaded.pipeline, "transformer", None) is not None else UNetPipelineFamily


def denoiser_of(pipe):
    """The pipeline's denoiser (its UNet or transformer), or None."""
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def callback_style(pipe) -> str | None:
    """How the pipeline reports each step: "on_step_end" (callback_on_step_end), "legacy" (callback and
    callback_steps, as PixArt's), or None when it reports none."""
    parameters = inspect.signature(type(pipe).__call__).parameters
    if "callback_on_step_end" in parameters:
        return "on_step_end"
    if "callback" in parameters and "callback_steps" in parameters:
        return "legacy"
    return None


def takes(pipe, name: str) -> bool:
    """Whether the pipeline's call takes the argument `name` (negative_prompt, say)."""
    return name in inspect.signature(type(pipe).__call__).parameters

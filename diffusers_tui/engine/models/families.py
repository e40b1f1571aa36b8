"""One adapter per model family: size rules, latent packing, and the x0 estimate of its prediction type.

The engine asks the family of a loaded model rather than reading `pipeline.unet` itself:
a UNet pipeline (SD 1.x/2.x, SDXL), a transformer pipeline (SD3, Flux, Sana, Chroma,
Qwen-Image...), or a bare UNet2DModel stepped by hand.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any


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


#: Pipelines whose input check asks for a fixed multiple, whatever their VAE and patch size.
CHECKED_MULTIPLES = {"SanaPipeline": 32, "SanaSprintPipeline": 32, "PixArtSigmaPipeline": 8, "PixArtAlphaPipeline": 8}


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
        packed = 2 if hasattr(pipe, "_unpack_latents") or hasattr(pipe, "_unpack_latents_with_ids") else 1
        return math.lcm(pipe.vae_scale_factor * max(int(patch), packed), CHECKED_MULTIPLES.get(type(pipe).__name__, 1))

    @staticmethod
    def unpack(pipe, latents, width: int, height: int):
        """(B, C, h, w) latents, from the packed tokens a Flux-like pipeline steps, by the pipeline's own helpers."""
        if latents is None or latents.ndim != 3:
            return latents
        if hasattr(pipe, "_unpack_latents_with_ids"):
            return _unpack_flux2(pipe, latents, width, height)
        if not hasattr(pipe, "_unpack_latents"):
            return latents
        unpacked = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
        return unpacked[:, :, 0] if unpacked.ndim == 5 else unpacked  # Qwen-Image: one frame of a video latent


def _unpack_flux2(pipe, latents, width: int, height: int):
    """Flux.2's tokens -> the latents its VAE decodes: scattered by position ids, its batch norm
    undone, 2x2 patches unfolded (what the pipeline does before its final decode)."""
    import torch

    side = pipe.vae_scale_factor * 2
    rows, columns = int(height) // side, int(width) // side
    ids = pipe._prepare_latent_ids(torch.empty(latents.shape[0], 1, rows, columns)).to(latents.device)
    grid = pipe._unpack_latents_with_ids(latents, ids, rows, columns)
    norm = pipe.vae.bn
    mean = norm.running_mean.view(1, -1, 1, 1).to(grid.device, grid.dtype)
    std = torch.sqrt(norm.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(grid.device, grid.dtype)
    return pipe._unpatchify_latents(grid * std + mean)


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


#: Transformer pipelines this tool is tested on, by name (tests/engine/test_transformer_families.py).
KNOWN_TRANSFORMER_PIPELINES = frozenset({
    "StableDiffusion3Pipeline", "FluxPipeline", "Flux2Pipeline", "Flux2KleinPipeline", "QwenImagePipeline",
    "PixArtAlphaPipeline", "PixArtSigmaPipeline", "SanaPipeline", "ChromaPipeline",
})


def fallback_note(pipe) -> str | None:
    """For a transformer pipeline outside the tested families: what the generic adapter cannot promise."""
    name = type(pipe).__name__
    if getattr(pipe, "transformer", None) is None or name in KNOWN_TRANSFORMER_PIPELINES:
        return None
    return (f"{name} is run by the generic transformer adapter (tested families: SD3, Flux, Flux.2, Qwen-Image, "
            "PixArt, Sana, Chroma): its size rules, guidance and negative prompt are read from its config and call "
            "signature; previews unpack only latents laid out as (channels, height, width) or by a "
            "`_unpack_latents` helper; comparisons are batched only if its call takes a batch of images "
            "and a step callback, else run lane after lane")


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
    parameters = call_parameters(type(pipe))
    if "callback_on_step_end" in parameters:
        return "on_step_end"
    if "callback" in parameters and "callback_steps" in parameters:
        return "legacy"
    return None


def sets_sigmas(pipe) -> bool:
    """Whether the pipeline hands its scheduler a σ list of its own (Chroma, Qwen-Image: np.linspace(1, 1/n))
    even to a solver in flow mode, which cannot take one. Flux and Flux.2 hold theirs back for those."""
    try:
        source = inspect.getsource(type(pipe).__call__)
    except (OSError, TypeError):
        return False
    return "sigmas = np.linspace" in source and "use_flow_sigmas" not in source


def steps_without_generator(pipe, scheduler) -> bool:
    """Whether `scheduler.step` takes a generator that the pipeline does not hand it.

    Stable Diffusion style pipelines pass theirs through `prepare_extra_step_kwargs`; the
    transformer pipelines (SD3, Flux, Chroma, Qwen-Image, Flux.2) call `step` without one.
    """
    step_takes = "generator" in inspect.signature(scheduler.step).parameters
    return step_takes and not hasattr(type(pipe), "prepare_extra_step_kwargs")


@functools.lru_cache(maxsize=64)
def call_parameters(pipeline_class) -> dict:
    """A pipeline class's call parameters by name: read once (a signature costs a run about a millisecond)."""
    return dict(inspect.signature(pipeline_class.__call__).parameters)


def takes(pipe, name: str) -> bool:
    """Whether the pipeline's call takes the argument `name` (negative_prompt, say)."""
    return name in call_parameters(type(pipe))


@dataclass(frozen=True)
class GuidanceStyle:
    """What the guidance number means on a pipeline, and which call argument carries it."""

    #: "cfg" (classifier-free: a second model call per step, against the negative prompt),
    #: "distilled" (an input the model was trained with, as Flux dev's; one call per step),
    #: or "none" (a guidance-distilled model that takes no guidance at all).
    kind: str
    #: The call argument the value goes to (None: it goes nowhere).
    keyword: str | None
    #: Whether a negative prompt is used; and the text sent when none is given (None: nothing is sent).
    negative_prompt: bool
    empty_negative: str | None
    meaning: str
    #: The pipeline's own default for that argument (None when it has none).
    default: float | None


def guidance_style(pipe) -> GuidanceStyle:
    """How `pipe` takes guidance: read from its call signature and its denoiser's config."""
    parameters = call_parameters(type(pipe))
    embedded = bool(getattr(getattr(getattr(pipe, "transformer", None), "config", None), "guidance_embeds", False))
    negative = "negative_prompt" in parameters

    def default(name: str) -> float | None:
        value = parameters[name].default if name in parameters else None
        return float(value) if isinstance(value, (int, float)) else None

    if embedded:  # Flux dev and its kind: guidance is an embedding the model was distilled with
        return GuidanceStyle("distilled", "guidance_scale", False, None,
                             "distilled guidance: a number the model reads as an input (it was trained to imitate "
                             "classifier-free guidance at that strength); one model call per step, no negative prompt",
                             default("guidance_scale"))
    if "true_cfg_scale" in parameters:  # Qwen-Image, Flux schnell: real CFG under another name, needing a negative
        return GuidanceStyle("cfg", "true_cfg_scale", negative, " ",
                             "classifier-free guidance (the pipeline's true_cfg_scale): a second model call per step "
                             "against the negative prompt (a blank one when none is given); 1 turns it off",
                             default("true_cfg_scale"))
    if getattr(getattr(pipe, "config", None), "is_distilled", False):  # Flux.2 klein's distilled models
        return GuidanceStyle("none", None, False, None, "none: this model is guidance-distilled and takes no guidance",
                             None)
    if "guidance_scale" not in parameters:
        return GuidanceStyle("none", None, negative, None, "none: this pipeline takes no guidance", None)
    # An empty negative prompt goes as the pipeline's own default: None for most, "" for PixArt and Sana.
    empty = parameters["negative_prompt"].default if negative else None
    return GuidanceStyle("cfg", "guidance_scale", negative, empty,
                         "classifier-free guidance: a second model call per step against the negative prompt "
                         "(an empty one when none is given); 1 or less turns it off", default("guidance_scale"))


def call_arguments(pipe, request) -> dict[str, Any]:
    """The family's call arguments for a request, beyond prompt, steps, size and generator.

    These are what the saved recipe's snippet passes too, so they stay JSON values.
    """
    style = guidance_style(pipe)
    arguments: dict[str, Any] = {}
    if style.keyword is not None:
        arguments[style.keyword] = request.guidance
    if style.negative_prompt:
        arguments["negative_prompt"] = request.negative_prompt or style.empty_negative
    elif takes(pipe, "negative_prompt"):
        arguments["negative_prompt"] = None  # Flux dev takes one only for its true CFG, which stays off
    if getattr(request, "guidance_rescale", 0.0) and takes(pipe, "guidance_rescale"):
        arguments["guidance_rescale"] = request.guidance_rescale
    if getattr(request, "eta", None) is not None and takes(pipe, "eta"):
        arguments["eta"] = request.eta  # DDIM's eta: the pipeline hands it to the scheduler's step
    if takes(pipe, "use_resolution_binning"):
        # PixArt and Sana would otherwise run at the nearest trained aspect bin and resize:
        # the size asked for is the size run, as in every other family (and in ComfyUI).
        arguments["use_resolution_binning"] = False
    if takes(pipe, "clean_caption"):
        # Caption cleaning needs optional packages (bs4, ftfy): off, so a run does not
        # depend on what else is installed.
        arguments["clean_caption"] = False
    return arguments


def guidance_note(request, summary) -> str | None:
    """What a request's guidance or negative prompt will not do on a loaded model; None when all applies."""
    if summary is None or summary.mode != "text-to-image":
        return None
    notes = []
    if request.negative_prompt and not summary.negative_prompt:
        notes.append("this model takes no negative prompt: it is not used")
    elif request.negative_prompt and summary.guidance == "cfg" and request.guidance <= 1:
        # Pipelines run the unconditional (negative) branch only when classifier-free guidance is on: above 1.
        notes.append(f"the negative prompt is not used at guidance {request.guidance:g} (it steers only above 1)")
    if request.guidance_rescale and not getattr(summary, "guidance_rescale", False):
        notes.append(f"guidance rescale {request.guidance_rescale:g} is not used: this pipeline has none "
                     "(SD 1.x/2.x and SDXL have it)")
    elif request.guidance_rescale and summary.guidance == "cfg" and request.guidance <= 1:
        notes.append(f"guidance rescale {request.guidance_rescale:g} is not used at guidance {request.guidance:g}")
    if getattr(request, "pag_scale", 0.0) and not getattr(summary, "pag", False):
        notes.append(f"PAG scale {request.pag_scale:g} cannot run: this pipeline has no perturbed-attention guidance "
                     "variant in diffusers (SD 1.x/2.x, SDXL and SD3 have one)")
    if summary.guidance == "none" and request.guidance not in (0, 1):
        notes.append(f"guidance {request.guidance:g} is not used: {summary.guidance_meaning.removeprefix('none: ')}")
    if summary.guidance == "distilled" and summary.guidance_default is not None and request.guidance > 3 * summary.guidance_default:
        notes.append(f"guidance here is {summary.guidance_meaning.split(':')[0]}; {request.guidance:g} is far above "
                     f"this pipeline's default of {summary.guidance_default:g}")
    return "; ".join(notes) or None

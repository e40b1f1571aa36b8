"""The loaded pipeline's relatives, built with diffusers' from_pipe: its image-to-image and PAG variants.

They share the loaded pipeline's modules (nothing loads twice) and are kept on the model for
later runs. Perturbed-attention guidance (PAG) swaps the denoiser's attention processors for the
length of a call and puts them back at its end; a run that stops part way (cancel, NaN) never
reaches that end, so `restoring_attention` puts them back whatever happens.
"""

from __future__ import annotations

import contextlib

from diffusers_tui.engine.errors import RequestError


def _mapping(img2img: bool):
    from diffusers.pipelines import auto_pipeline

    return (auto_pipeline.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING if img2img
            else auto_pipeline.AUTO_TEXT2IMAGE_PIPELINES_MAPPING)


def has_pag(pipeline, img2img: bool = False) -> bool:
    """Whether diffusers has a PAG variant of this pipeline's family (for img2img too, where asked)."""
    if pipeline is None:
        return False
    name = type(pipeline).__name__
    family = next((key for key, cls in _mapping(False).items() if cls.__name__ == name), None)
    return family is not None and f"{family}-pag" in _mapping(img2img)


def pipeline_for(loaded, img2img: bool = False, pag: bool = False):
    """The pipeline a run calls: the loaded one, or its image-to-image and/or PAG variant (made once)."""
    if not img2img and not pag:
        return loaded.pipeline
    key = ("img2img" if img2img else "text2img") + ("+pag" if pag else "")
    cached = loaded.related_pipelines.get(key)
    if cached is not None:
        return cached
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    name = type(loaded.pipeline).__name__
    if pag and not has_pag(loaded.pipeline, img2img):
        raise RequestError("pag_scale", f"{name} has no perturbed-attention guidance variant in diffusers"
                                        f"{' for img2img' if img2img else ''} (SD 1.x/2.x, SDXL and SD3 have one); "
                                        "leave the PAG scale at 0")
    auto = AutoPipelineForImage2Image if img2img else AutoPipelineForText2Image
    try:
        pipe = auto.from_pipe(loaded.pipeline, **({"enable_pag": True} if pag else {}))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        field = "pag_scale" if pag else "init_image"
        raise RequestError(field, f"{name} has no {'image-to-image ' if img2img else ''}{'PAG ' if pag else ''}"
                                  f"pipeline in diffusers ({error}); leave it out for this model") from None
    from diffusers_tui.engine.models import families

    if img2img and not families.takes(pipe, "strength"):  # Flux.2's image input is a reference to edit from
        raise RequestError("init_image", f"{type(pipe).__name__} takes a picture as a reference to edit from, not as "
                                         "a start to denoise: img2img is not run on this model")
    missing = _missing_pag_layer(pipe) if pag else None
    if missing is not None:
        raise RequestError("pag_scale", f"{type(pipe).__name__} perturbs the attention of {missing!r} (diffusers' "
                                        "default PAG layers), which this model does not have; leave the PAG scale "
                                        "at 0")
    pipe.set_progress_bar_config(disable=True)
    loaded.related_pipelines[key] = pipe
    return pipe


def _missing_pag_layer(pipe) -> str | None:
    """The first of the PAG pipeline's layers that names no module of its denoiser (a small model's), or None."""
    import re

    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    names = [name for name, _ in denoiser.named_modules()] if denoiser is not None else []
    for layer in getattr(pipe, "pag_applied_layers", None) or ():
        if not any(re.search(layer, name) for name in names):
            return layer
    return None


@contextlib.contextmanager
def restoring_attention(denoiser, pag: bool):
    """Put the denoiser's attention processors back after a PAG call, however it ends."""
    if not pag or denoiser is None or not hasattr(denoiser, "attn_processors"):
        yield
        return
    original = dict(denoiser.attn_processors)
    try:
        yield
    finally:
        denoiser.set_attn_processor(original)

"""A1111's hires fix: a first pass, an upscale (in latent space or in pixels), and an img2img second pass.

As A1111 1.10's processing.py does it: the second pass is `hires_steps` steps (0: the first
pass's) taken by the fix-steps rule (sigma.partial, exact_steps) at the denoising strength
(0.7 by default, its txt2img page's), from the upscaled latent with fresh noise of the same seed.
The latent upscalers are torch's interpolate in A1111's six modes; "Lanczos" and "Nearest"
decode, resize the picture with PIL, and encode again. Both passes report their model calls
as one run, the second's counted on from the first's, so the live pane and the scrubber walk both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from diffusers_tui.engine.errors import RequestError

#: A1111's latent upscale modes (shared.latent_upscale_modes): torch interpolate's mode and antialias.
LATENT_UPSCALERS = {"Latent": ("bilinear", False), "Latent (antialiased)": ("bilinear", True),
                    "Latent (bicubic)": ("bicubic", False), "Latent (bicubic antialiased)": ("bicubic", True),
                    "Latent (nearest)": ("nearest", False), "Latent (nearest-exact)": ("nearest-exact", False)}
#: A1111's built-in picture upscalers: PIL's filters.
PIXEL_UPSCALERS = ("Lanczos", "Nearest")
UPSCALERS = (*LATENT_UPSCALERS, *PIXEL_UPSCALERS)
#: A1111's hires upscale slider: 1 to 4.
MAX_SCALE = 4.0
#: A1111's txt2img page's hires denoising strength.
DEFAULT_STRENGTH = 0.7


def applies(request) -> bool:
    return request.hires_scale is not None


def canonical_upscaler(name: str) -> str:
    """An upscaler's A1111 spelling, whatever its case; RequestError lists them where it is none of them."""
    for known in UPSCALERS:
        if known.lower() == str(name).strip().lower():
            return known
    raise RequestError("hires_upscaler", f"{name!r} is not an upscaler here: {', '.join(UPSCALERS)} (upscaler "
                                         "models such as ESRGAN are not loaded by this tool)")


def check_fields(request, check_real, check_whole, max_steps: int) -> None:
    """The hires fields checked (called by the request, which hands over its number checks)."""
    object.__setattr__(request, "hires_upscaler", canonical_upscaler(request.hires_upscaler))
    check_whole("hires_steps", request.hires_steps, 0, max_steps)
    if request.hires_scale is None:
        return
    check_real("hires_scale", request.hires_scale, 1.0, MAX_SCALE)
    if request.init_image is not None:
        raise RequestError("hires_scale", "the hires fix is a text-to-image pass and an img2img pass: leave out "
                                          "the init image, or the hires fix")


def strength(request) -> float:
    return DEFAULT_STRENGTH if request.strength is None else float(request.strength)


def target_size(request, width: int, height: int, multiple: int) -> tuple[int, int]:
    """The second pass's size, int(side · scale) as A1111 takes it; RequestError where the model cannot run it."""
    target = int(width * request.hires_scale), int(height * request.hires_scale)
    if target[0] % multiple or target[1] % multiple:
        raise RequestError("hires_scale", f"{request.hires_scale:g} makes {target[0]}x{target[1]} from {width}x"
                                          f"{height}, not a multiple of {multiple}, this model's factor; choose a "
                                          "scale that gives one")
    return target


def passes(request, width: int, height: int, multiple: int):
    """(first pass request, second pass request, second pass size): the first a plain text-to-image run."""
    first = dataclasses.replace(request, hires_scale=None)
    target = target_size(request, width, height, multiple)
    second = dataclasses.replace(request, hires_scale=None, width=target[0], height=target[1],
                                 steps=request.hires_steps or request.steps, strength=strength(request))
    return first, second, target


def upscale(pipe, latents, pictures: list, upscaler: str, width: int, height: int, factor: int):
    """The second pass's start: latents interpolated (the latent modes), or the pictures resized (PIL; one
    picture, or a batch's list)."""
    if upscaler in LATENT_UPSCALERS:
        import torch

        mode, antialias = LATENT_UPSCALERS[upscaler]
        return torch.nn.functional.interpolate(latents.float(), size=(height // factor, width // factor), mode=mode,
                                               antialias=antialias).to(latents.dtype)
    from PIL import Image

    resized = [picture.resize((width, height), resample=Image.LANCZOS if upscaler == "Lanczos" else Image.NEAREST)
               for picture in pictures]
    return resized[0] if len(resized) == 1 else resized


def counted_on(on_step, calls_before: int, total_before: int):
    """The second pass's on_step: its calls counted on from the first pass's."""
    def forward(snapshot) -> None:
        on_step(dataclasses.replace(snapshot, step=calls_before + snapshot.step, total=total_before + snapshot.total))

    return forward


def recipe_facts(request, second, facts: dict[str, Any], calls: int) -> dict[str, Any]:
    """What the recipe keeps of the second pass (the first pass's facts are the recipe's own)."""
    return {"upscale": request.hires_scale, "upscaler": request.hires_upscaler, "steps": second.steps,
            "strength": second.strength, "width": second.width, "height": second.height, "model_calls": calls,
            "scheduler_config": facts.get("scheduler_config"), "takes_size": bool(facts.get("takes_size")),
            "call_arguments": facts.get("call_arguments")}

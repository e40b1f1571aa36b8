"""img2img: a run that starts from a picture, noised to the strength's σ and denoised from there.

A pipeline model runs through its family's image-to-image pipeline, built from the loaded one
with diffusers' `from_pipe` (the same modules: nothing loads twice) and kept for later runs. An
engine sampler runs its tool's part of the schedule and noises the latent by its tool's rule
(sigma.partial; the pipeline is called at strength 1, so it keeps every timestep the sampler
gives it); a diffusers class runs diffusers' own strength rule. The UNet loop does the same by
hand on a pixel-space model.
"""

from __future__ import annotations

from typing import Any

from diffusers_tui.engine.errors import RequestError

#: A1111's img2img denoising strength default (its processing class's; its hires fix defaults to 0.7).
DEFAULT_STRENGTH = 0.75
#: A1111's hires-fix denoising strength default (its txt2img page).
DEFAULT_HIRES_STRENGTH = 0.7


def applies(request) -> bool:
    return request.init_image is not None


def strength(request) -> float:
    return DEFAULT_STRENGTH if request.strength is None else float(request.strength)


def check_fits(request, scheduler) -> None:
    """What an img2img request cannot do, said before anything runs."""
    varied = request.variation_strength or request.seed_resize_from is not None
    if varied and not _is_engine(scheduler):
        raise RequestError("init_image", f"diffusers' {type(scheduler).__name__} draws an image-to-image start's "
                                         "noise itself: a variation seed or seed resize with an init image needs "
                                         "an engine sampler (A1111's names)")
    if not _is_engine(scheduler) and int(request.steps * strength(request)) < 1:
        raise RequestError("strength", f"diffusers' {type(scheduler).__name__} runs no step at strength "
                                       f"{strength(request):g} and {request.steps} steps (it keeps int(steps · "
                                       "strength) of them); raise either, or choose an engine sampler (A1111's "
                                       "names), whose strength 0 is one step at the smallest σ")


def pipeline_kwargs(pipe, scheduler, request, image, width: int, height: int, exact_steps: bool = False
                    ) -> dict[str, Any]:
    """The image-to-image call's own arguments: the picture (or latents), the strength, and the size where it
    takes one. `exact_steps`: a diffusers class is given int(steps / strength) steps, so that it keeps `steps`
    (A1111's fix-steps rule, which an engine sampler's own schedule follows)."""
    from diffusers_tui.engine.models import families

    engine = _is_engine(scheduler)
    kwargs: dict[str, Any] = {"image": image,
                              # An engine sampler already runs only its part of the schedule: keep it all.
                              "strength": 1.0 if engine else strength(request)}
    if exact_steps and not engine:
        kwargs["num_inference_steps"] = exact_step_count(request.steps, strength(request))
    if families.takes(pipe, "width"):
        kwargs.update(width=width, height=height)
    return kwargs


def kept_steps(request) -> int:
    """The steps diffusers' image-to-image pipelines keep of `steps` at the strength: int(steps · strength)."""
    return min(int(request.steps * strength(request)), request.steps)


def exact_step_count(steps: int, strength: float) -> int:
    """The steps a diffusers class is given for A1111's fix-steps rule: the fewest of which it keeps `steps`."""
    count, kept = steps, max(strength, 1e-3)
    while int(count * kept) < steps:  # diffusers keeps int(count · strength) of them
        count += 1
    return count


def unet_start(scheduler, request, init, generator, device, dtype):
    """The UNet loop's first sample from the init picture: noised to the strength's first σ (engine sampler),
    or by diffusers' rule (its timesteps cut to int(steps · strength), then add_noise at the first)."""
    import numpy as np
    import torch

    pixels = torch.from_numpy(np.asarray(init.image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    pixels = pixels.to(device, dtype)
    if _is_engine(scheduler):
        return scheduler.add_noise(pixels, None, None)
    start = (request.steps - kept_steps(request)) * scheduler.order
    scheduler.timesteps = scheduler.timesteps[start:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    noise = torch.randn(pixels.shape, generator=generator, dtype=torch.float32).to(device, dtype)
    return scheduler.add_noise(pixels, noise, scheduler.timesteps[:1])


def watch_start(scheduler, denoiser, emit):
    """Hand the noised start to `emit(start)` just before the first model call, so a run from a picture shows
    it as step 0: the scheduler's add_noise (scale_noise on flow pipelines) is watched for it. Returns the
    denoiser hook's handle, to remove after the run."""
    kept: dict[str, Any] = {}
    for name in ("add_noise", "scale_noise"):
        original = getattr(scheduler, name, None)
        if original is None:
            continue

        def watched(*args, _original=original, **kwargs):
            start = _original(*args, **kwargs)
            kept.setdefault("start", start)
            return start

        setattr(scheduler, name, watched)  # on this run's own scheduler only

    def before_the_first_call(module, args, kwargs):
        if "start" in kept and not kept.get("shown"):
            kept["shown"] = True
            emit(kept["start"])

    return denoiser.register_forward_pre_hook(before_the_first_call, with_kwargs=True)


def snippet_lines(request, recipe: dict[str, Any]) -> list[str]:
    """The snippet's lines that make its pipeline image-to-image and read the same picture the same way."""
    init = recipe["init_image"]
    return ["from PIL import Image",
            f"init_image = Image.open({init['path']!r})",
            "if init_image.mode == 'RGBA':  # laid on white, as A1111 does",
            "    laid = Image.new('RGBA', init_image.size, '#ffffff')",
            "    laid.paste(init_image, mask=init_image)",
            "    init_image = laid",
            f"init_image = init_image.convert('RGB').resize(({recipe['width']}, {recipe['height']}), Image.LANCZOS)",
            "pipe = diffusers.AutoPipelineForImage2Image.from_pipe(pipe"
            + (", enable_pag=True)" if "pag_scale" in (recipe.get("call_arguments") or {}) else ")"),
            "pipe.scheduler = scheduler"]


def recipe_facts(init) -> dict[str, Any]:
    return {"path": init.path, "sha256": init.sha256, "size": list(init.original_size)}


def _is_engine(scheduler) -> bool:
    return type(scheduler).__name__ == "SigmaSamplerScheduler"

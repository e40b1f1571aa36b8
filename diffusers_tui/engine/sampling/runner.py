"""One run of a loaded model: a pipeline through its step callback, or the hand-stepped UNet loop.

`run(loaded, request, on_step, cancel)` is called from a worker thread. It reports every
model call to `on_step` as a frozen StepSnapshot, stops within one step once `cancel` is
set (skipping the final decode), and returns a GenerationResult.
"""

from __future__ import annotations

import threading
from typing import Callable

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.request import GenerationRequest, GenerationResult, StepSnapshot
from diffusers_tui.engine.sampling.pipeline_loop import run_pipeline
from diffusers_tui.engine.sampling.preflight import check_mode, check_steps, resolve_size, scheduler_for
from diffusers_tui.engine.sampling import batches, hires, img2img, variants
from diffusers_tui.engine.sampling.unet_loop import run_unet_loop

OnStep = Callable[[StepSnapshot], None]


def run(loaded, request: GenerationRequest, on_step: OnStep | None = None,
        cancel: threading.Event | None = None) -> GenerationResult:
    """Run `request` on `loaded`; see the module docstring for the contract."""
    check_mode(loaded, request)
    width, height = resolve_size(loaded, request)
    if loaded.mode == "unet" and request.pag_scale:
        raise RequestError("pag_scale", "perturbed-attention guidance is a pipeline's (it perturbs a text model's "
                                        "attention); leave it at 0 for a UNet model")
    if batches.applies(request) and (request.batch_count > 1 or loaded.mode == "unet"):
        if loaded.mode == "unet" and request.batch_size > 1:
            raise RequestError("batch_size", "the UNet loop runs one image a call: use a batch count")
        return batches.run_batches(request, lambda call, forward: run(loaded, call, forward, cancel),
                                   on_step or (lambda snapshot: None))
    if hires.applies(request):
        return run_hires(loaded, request, width, height, on_step or (lambda snapshot: None), cancel or threading.Event())
    scheduler = scheduler_for(loaded, request)
    check_steps(scheduler, request)
    cancel = cancel or threading.Event()
    on_step = on_step or (lambda snapshot: None)
    loop = run_unet_loop if loaded.mode == "unet" else run_pipeline
    return loop(loaded, request, scheduler, width, height, on_step, cancel)


def run_hires(loaded, request: GenerationRequest, width: int, height: int, on_step: OnStep,
              cancel: threading.Event) -> GenerationResult:
    """A1111's hires fix (engine.sampling.hires): the first pass, the upscale, the img2img second pass."""
    import dataclasses

    if loaded.mode == "unet":
        raise RequestError("hires_scale", "the hires fix is for pipeline models (it upscales latents or decodes "
                                          "and encodes pictures); leave it out for a UNet model")
    first, second, (width2, height2) = hires.passes(request, width, height, loaded.size_multiple)
    try:  # its second pass is img2img: a model without an image-to-image pipeline says so before the first
        variants.pipeline_for(loaded, img2img=True, pag=request.pag_scale > 0)
    except RequestError as error:
        reason = str(error).split(": ", 1)[1]
        raise RequestError("hires_scale", f"the hires fix's second pass is img2img: {reason}") from None
    scheduler, scheduler2 = scheduler_for(loaded, first), scheduler_for(loaded, second, second_pass=True)
    check_steps(scheduler, first)
    check_steps(scheduler2, second)
    if not getattr(scheduler2, "expected_calls", 0):  # a diffusers class: given int(steps / strength) steps
        given = img2img.exact_step_count(second.steps, second.strength)
        limit = int(getattr(scheduler2.config, "num_train_timesteps", 1000))
        if given > limit:
            raise RequestError("strength", f"{type(scheduler2).__name__} would need {given} steps for {second.steps} "
                                           f"at strength {second.strength:g}, more than its {limit}; raise the "
                                           "strength or choose an engine sampler")
    expected2 = getattr(scheduler2, "expected_calls", 0) or second.steps
    in_pixels = request.hires_upscaler in hires.PIXEL_UPSCALERS
    result = run_pipeline(loaded, first, scheduler, width, height,
                          lambda snapshot: on_step(dataclasses.replace(snapshot, total=snapshot.total + expected2)),
                          cancel, decode=in_pixels)
    if result.cancelled or result.stopped or result.latents is None:
        return dataclasses.replace(result, request=request)
    factor = loaded.pipeline.vae_scale_factor
    pictures = [item.image for item in result.batch] or [result.image]  # a batch's own pictures, not its grid
    start = hires.upscale(loaded.pipeline, result.latents, pictures, request.hires_upscaler, width2, height2, factor)
    result2 = run_pipeline(loaded, second, scheduler2, width2, height2,
                           hires.counted_on(on_step, result.model_calls, result.total_calls), cancel, start=start,
                           exact_steps=True)
    facts = {**result.recipe, "hires": hires.recipe_facts(request, second, result2.recipe, result2.model_calls)}
    combined = dataclasses.replace(result2, request=request, recipe=facts,
                                   elapsed_s=result.elapsed_s + result2.elapsed_s,
                                   model_calls=result.model_calls + result2.model_calls,
                                   total_calls=result.total_calls + result2.total_calls)
    if result2.batch:  # each image: a hires run of its own, with both passes' facts for its seed
        combined = dataclasses.replace(combined, batch=batches.split(combined, [item.image for item in result2.batch]))
    return combined

"""The diffusers quick-start loop on a bare UNet2DModel, stepped by hand: set_timesteps, unet, step."""

from __future__ import annotations

import time

import torch

from diffusers_tui.engine.preview.images import tensor_to_image
from diffusers_tui.engine.request import GenerationResult, StepSnapshot
from diffusers_tui.engine.sampling.estimates import current_sigma
from diffusers_tui.engine.sampling.facts import run_facts
from diffusers_tui.engine.preview.record import LatentRecorder
from diffusers_tui.engine.sampling.policy import NanWatch, denoised_estimate, not_finite_message, preview_due
from diffusers_tui.engine.files import init_image
from diffusers_tui.engine.sampling import img2img, variation
from diffusers_tui.engine.sampling.preflight import accepts


def run_unet_loop(loaded, request, scheduler, width, height, on_step, cancel) -> GenerationResult:
    """The diffusers quick-start loop: set_timesteps, unet(x, t).sample, scheduler.step."""
    unet = loaded.unet
    device, dtype = loaded.device, loaded.dtype
    generator = torch.Generator(device="cpu").manual_seed(request.seed)
    scheduler.set_timesteps(request.steps, device=device)
    shape = (1, unet.config.in_channels, height, width)
    init = None
    if img2img.applies(request):  # the init picture, noised to the strength's σ and stepped from there
        img2img.check_fits(request, scheduler)
        init = init_image.load(request.init_image, width, height)
        if variation.applies(request):  # A1111's variation noise for the start (engine samplers: check_fits)
            scheduler.img2img_noise = variation.starting_noise(request, shape, scheduler.config.convention, device,
                                                               dtype, latent_factor=1)
        sample = img2img.unet_start(scheduler, request, init, generator, device, dtype)
    elif variation.applies(request):  # A1111's variation seed or seed resize, under the run's convention
        convention = getattr(scheduler.config, "convention", None) or "A1111 CPU"
        sample = variation.starting_noise(request, shape, convention, device, dtype, latent_factor=1)
    elif getattr(scheduler, "draws_its_own_start", False):  # A1111's GPU or NV noise: the engine draws it
        sample = scheduler.starting_noise(shape, device, dtype)
    else:
        sample = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
    if init is None:
        sample = sample * scheduler.init_noise_sigma
    step_kwargs = {"generator": generator} if accepts(scheduler.step, "generator") else {}
    total = len(scheduler.timesteps)
    # Values read once: reading a device tensor's value every step would wait for the device.
    timestep_values = [float(t) for t in scheduler.timesteps.cpu()]
    recorder, nan_watch = LatentRecorder(loaded.decoders, total), NanWatch()
    started = time.perf_counter()
    if init is not None:  # the noised picture is step 0, shown before the first call
        record = recorder.record(None, sample) if request.preview_method != "none" else None
        on_step(StepSnapshot(step=0, total=getattr(scheduler, "expected_calls", 0) or total,
                             timestep=timestep_values[0], sigma=None, elapsed_s=0.0, latents=record,
                             preview_kind=request.preview))
    calls, cancelled, stopped = 0, False, None
    with torch.inference_mode():
        for timestep, value in zip(scheduler.timesteps, timestep_values):
            if cancel.is_set():
                cancelled = True
                break
            sigma = current_sigma(scheduler, value)
            model_input = scheduler.scale_model_input(sample, timestep)
            noise_pred = unet(model_input, timestep).sample
            output = scheduler.step(noise_pred, timestep, sample, **step_kwargs)
            calls += 1
            record = None
            if preview_due(calls, total, request):
                x0 = denoised_estimate(scheduler, output, noise_pred, sample, value, sigma)
                record = recorder.record(x0, output.prev_sample)
            if not nan_watch.finite(calls, total, record, output.prev_sample):
                stopped = not_finite_message(f"sample by model call {nan_watch.bad_call} of {total}", dtype)
                calls = nan_watch.bad_call
                break
            sample = output.prev_sample
            total = getattr(scheduler, "expected_calls", 0) or total
            on_step(StepSnapshot(step=calls, total=total, timestep=value, sigma=sigma,
                                 elapsed_s=time.perf_counter() - started, latents=record,
                                 preview_kind=request.preview))
            if getattr(scheduler, "finished", False):  # an adaptive sampler (DPM adaptive) done early
                break
    image = None if cancelled or stopped else tensor_to_image(sample[0])
    facts = run_facts(loaded, scheduler, width, height, request)
    if init is not None:
        facts["init_image"] = img2img.recipe_facts(init)
    return GenerationResult(
        request=request, image=image, cancelled=cancelled, elapsed_s=time.perf_counter() - started,
        model_calls=calls, total_calls=total, recipe=facts, stopped=stopped,
    )

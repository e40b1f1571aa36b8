"""Text-to-image through a diffusers pipeline, watched step by step through its callback.

The callback sees each step's noisy latents; a wrapper around the scheduler's `step` keeps
the guided model output, so the denoised estimate can be recorded too. Each due step is
recorded as latents (see preview.record); nothing here decodes pixels or waits for the
device: timesteps are read from one CPU copy per run, NaN is looked for in records whose
copies have landed. Cancelling raises from the callback, which skips the remaining steps
and the final decode.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import numpy as np
import torch

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.models import families
from diffusers_tui.engine.preview.record import LatentRecorder
from diffusers_tui.engine.files import init_image
from diffusers_tui.engine.sampling import batches, img2img, prompt_weighting, variants, variation
from diffusers_tui.engine.request import GenerationResult, StepSnapshot
from diffusers_tui.engine.sampling.estimates import current_sigma, estimate_x0, sigma_list
from diffusers_tui.engine.sampling.facts import run_facts
from diffusers_tui.engine.sampling.registry import is_flow_scheduler
from diffusers_tui.engine.sampling.policy import NanWatch, not_finite_message, preview_due


class _Cancelled(Exception):
    """Raised inside the pipeline callback: it skips the remaining steps and the VAE decode."""


class _NotFinite(Exception):
    """Raised inside the pipeline callback when the latents hold NaN or infinity."""


class _StepWatcher:
    """Wraps one scheduler's `step` to keep what a preview needs from the latest call.

    The pipeline callback only sees the noisy latents; the denoised estimate needs the
    guided model output, which only the scheduler's `step` receives.
    """

    def __init__(self, scheduler, generator=None):
        self.scheduler = scheduler
        self.sigma: float | None = None
        self.calls = 0
        #: The run's timesteps on the CPU, copied once: reading a device tensor's value waits for the device.
        self.timesteps: list[float] | None = None
        original_step = scheduler.step

        # wraps() keeps the original signature visible: pipelines inspect it to decide
        # whether to pass `generator`, and without it ancestral samplers lose their seed.
        @functools.wraps(original_step)
        def step(model_output, timestep, sample, *args, **kwargs):
            if generator is not None and "generator" not in kwargs:
                # SD3, Flux, Chroma, Qwen-Image and Flux.2 pipelines step without their generator, so a
                # stochastic sampler (Euler a, DPM++ 2M SDE, LCM) would draw from the global RNG: the
                # run's own generator keeps it reproducible (the snippet hands it over the same way).
                kwargs["generator"] = generator
            if self.timesteps is None:  # read once a run: the schedule is set before the first step
                self.timesteps = [float(t) for t in scheduler.timesteps.cpu()]
                # An image-to-image pipeline starts part way into the scheduler's timesteps (its begin index).
                self.offset = getattr(scheduler, "begin_index", None) or 0
                self._flow = is_flow_scheduler(scheduler)
                self._sigma_values = sigma_list(scheduler, self._flow)
            value = self.timesteps[min(self.calls + self.offset, len(self.timesteps) - 1)]
            sigma = current_sigma(scheduler, value, self.calls + self.offset, flow=self._flow,
                                  sigma_values=self._sigma_values)
            output = original_step(model_output, timestep, sample, *args, **kwargs)
            values = output if isinstance(output, tuple) else output.to_tuple()
            reported = values[1] if len(values) > 1 else None
            self.sigma = sigma
            self.calls += 1
            # Keep references only: the estimate is worked out when a record is due.
            self._pending = (reported, model_output, sample, value, sigma)
            if self.after_step is not None:
                self.after_step(self.calls - 1, timestep, values[0])
            return output

        self._pending: tuple | None = None
        self.offset = 0
        #: Called after each step with (call index, timestep, new latents): for pipelines whose own callback
        #: skips calls (PixArt's legacy callback sits out its "warm-up" calls when a sampler makes more
        #: model calls than steps).
        self.after_step = None
        #: Whether this wrapper hands the run's generator to `step` (the pipeline does not).
        self.hands_generator = generator is not None
        scheduler.step = step

    def timestep(self, index: int, timestep) -> float:
        if self.timesteps is not None and index + self.offset < len(self.timesteps):
            return self.timesteps[index + self.offset]
        return float(timestep)

    def denoised(self) -> torch.Tensor | None:
        if self._pending is None:
            return None
        reported, model_output, sample, timestep, sigma = self._pending
        if reported is not None:
            return reported
        return estimate_x0(self.scheduler, model_output, sample, timestep, sigma)


def _engine_starting_noise(pipe, scheduler, width: int, height: int, loaded, batch: int = 1) -> torch.Tensor:
    """A1111's GPU or NV starting noise, drawn by the engine and handed to a UNet pipeline as its latents
    (which it scales by init_noise_sigma, as it would its own)."""
    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise RequestError("noise", f"{scheduler.config.convention} noise is drawn here for UNet models only "
                                    "(SD 1.x, SDXL); choose A1111 CPU or ComfyUI for this model")
    factor = pipe.vae_scale_factor
    shape = (batch, unet.config.in_channels, height // factor, width // factor)  # one seed per image of a batch
    return scheduler.starting_noise(shape, loaded.device, loaded.dtype)


def _varied_starting_noise(pipe, scheduler, request, width: int, height: int, loaded) -> torch.Tensor:
    """The starting noise with the request's variation seed and seed resize (engine.sampling.variation),
    handed to a UNet pipeline as its latents; drawn under the run's noise convention (a diffusers class's
    is the pipeline's CPU generator, A1111's CPU noise)."""
    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise RequestError("variation_seed", "variation seeds and seed resize are A1111's, for UNet models here "
                                             "(SD 1.x, SDXL); leave them out for this model")
    factor = pipe.vae_scale_factor
    shape = (1, unet.config.in_channels, height // factor, width // factor)
    convention = getattr(scheduler.config, "convention", None) or "A1111 CPU"
    return variation.starting_noise(request, shape, convention, loaded.device, loaded.dtype, factor)


def _is_engine_flow(scheduler) -> bool:
    return type(scheduler).__name__ == "SigmaSamplerScheduler" and scheduler.config.flow


def run_pipeline(loaded, request, scheduler, width, height, on_step, cancel, start=None, exact_steps: bool = False,
                 decode: bool = True) -> GenerationResult:
    """One run through the pipeline. `start`: an img2img start in memory (a hires pass's upscaled latents or
    picture), stepped by `exact_steps` (A1111's fix-steps rule); `decode` False leaves the image None (the
    final latents are the result's either way)."""
    init = None
    if img2img.applies(request):  # the family's image-to-image pipeline, sharing the loaded one's modules
        img2img.check_fits(request, scheduler)
        init = init_image.load(request.init_image, width, height)
    # The family's image-to-image and/or PAG pipeline, sharing the loaded one's modules (variants).
    pag = request.pag_scale > 0
    if pag and getattr(scheduler, "needs_uncond", False):
        raise RequestError("pag_scale", f"{request.scheduler} steps along the unconditional estimate, which PAG's "
                                        "third batch half hides; choose another sampler for PAG, or leave it at 0")
    pipe = variants.pipeline_for(loaded, img2img=init is not None or start is not None, pag=pag)
    pipe.scheduler = scheduler
    family = families.family_of(loaded)
    # The generator the pipeline draws its starting noise from; the step noise continues it.
    generator = torch.Generator(device="cpu").manual_seed(request.seed)
    if request.batch_size > 1:  # one generator per image, seeded seed + i: each image's noise as its own run's
        generator = [torch.Generator(device="cpu").manual_seed(request.seed + i) for i in range(request.batch_size)]
    watcher = _StepWatcher(scheduler, generator if families.steps_without_generator(pipe, scheduler) else None)
    nan_watch = NanWatch()
    started = time.perf_counter()
    state = {"calls": 0, "total": 0, "recorder": None}

    def unpacked(latents):
        return family.unpack(pipe, latents, width, height)  # Flux-like pipelines step packed patch tokens

    def callback(pipeline, index: int, timestep, tensors: dict) -> dict:
        if cancel.is_set():
            raise _Cancelled
        # The engine's samplers know their model calls (an adaptive one: so far, and one more to come).
        total = int(getattr(scheduler, "expected_calls", 0) or getattr(pipeline, "num_timesteps", 0)
                    or len(scheduler.timesteps))
        calls = index + 1
        state.update(calls=calls, total=total, latents=tensors["latents"])
        record = None
        if preview_due(calls, total, request):
            recorder = state["recorder"] = state["recorder"] or LatentRecorder(loaded.decoders, total)
            record = recorder.record(unpacked(watcher.denoised()), unpacked(tensors["latents"]))
        if not nan_watch.finite(calls, total, record, tensors["latents"]):
            state["calls"] = nan_watch.bad_call
            raise _NotFinite
        on_step(StepSnapshot(step=calls, total=total, timestep=watcher.timestep(index, timestep),
                             sigma=watcher.sigma, elapsed_s=time.perf_counter() - started, latents=record,
                             preview_kind=request.preview))
        if cancel.is_set():  # cancelled while this step was shown: skip the VAE decode too
            raise _Cancelled
        if getattr(scheduler, "finished", False):  # an adaptive sampler done early: the rest is skipped
            pipeline._interrupt = True
        return {}

    # Guidance, negative prompt and the family's switches: what the snippet passes too.
    arguments = families.call_arguments(pipe, request)
    kwargs: dict[str, Any] = dict(
        prompt=request.prompt,
        num_inference_steps=request.steps,
        width=width,
        height=height,
        # A CPU generator gives the same starting noise on every device.
        generator=generator,
        # Floats, so a decode that overflowed shows up as NaN instead of a black picture.
        output_type="np" if decode else "latent",
        **arguments,
    )
    if request.batch_size > 1:
        kwargs["num_images_per_prompt"] = request.batch_size
    if pag:  # perturbed-attention guidance: the PAG pipeline's scale (its layers: the pipeline's default)
        kwargs["pag_scale"] = arguments["pag_scale"] = request.pag_scale
    if init is not None or start is not None:  # the start is the init image, noised by the scheduler's add_noise
        if init is not None and variation.applies(request):  # A1111's variation noise, as its img2img draws it
            scheduler.img2img_noise = _varied_starting_noise(pipe, scheduler, request, width, height, loaded)
        del kwargs["width"], kwargs["height"]
        kwargs.update(img2img.pipeline_kwargs(pipe, scheduler, request, start if init is None else init.image,
                                              width, height, exact_steps))
    elif variation.applies(request):  # A1111's variation seed or seed resize: the start is drawn here
        kwargs["latents"] = _varied_starting_noise(pipe, scheduler, request, width, height, loaded)
    elif getattr(scheduler, "draws_its_own_start", False):
        kwargs["latents"] = _engine_starting_noise(pipe, scheduler, width, height, loaded, request.batch_size)
    if families.callback_style(pipe) == "legacy":  # PixArt's callback(step, timestep, latents) skips calls: see
        watcher.after_step = lambda index, timestep, latents: callback(pipe, index, timestep, {"latents": latents})
    else:
        kwargs.update(callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    weighted = prompt_weighting.applies(pipe, request.prompt, request.negative_prompt)
    image, cancelled, stopped = None, False, None
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    uncond_watch = scheduler.watch_uncond(denoiser) if getattr(scheduler, "needs_uncond", False) and denoiser else None
    # A flow schedule that starts below σ = 1: the pipeline's unit noise is scaled to σ₀ (ComfyUI's start).
    start_watch = scheduler.watch_start(denoiser) if _is_engine_flow(scheduler) and denoiser else None
    if init is not None and denoiser is not None:  # the noised picture is step 0, shown before the first call
        def show_start(start) -> None:
            total = int(getattr(scheduler, "expected_calls", 0) or img2img.kept_steps(request))
            recorder = state["recorder"] = state["recorder"] or LatentRecorder(loaded.decoders, total)
            record = recorder.record(None, unpacked(start)) if request.preview_method != "none" else None
            first = float(scheduler.timesteps[getattr(scheduler, "begin_index", None) or 0])
            on_step(StepSnapshot(step=0, total=total, timestep=first, sigma=None,
                                 elapsed_s=time.perf_counter() - started, latents=record, preview_kind=request.preview))

        start_shown = img2img.watch_start(scheduler, denoiser, show_start)
    else:
        start_shown = None
    try:
        with torch.inference_mode(), variants.restoring_attention(denoiser, pag):
            if weighted:  # A1111 emphasis and BREAK: embeddings from compel instead of the plain text
                del kwargs["prompt"]
                kwargs.pop("negative_prompt", None)
                kwargs.update(prompt_weighting.prompt_kwargs(pipe, request.prompt, request.negative_prompt))
            decoded = pipe(**kwargs).images
        if not decode:
            pass
        elif np.isfinite(decoded).all():
            images = pipe.numpy_to_pil(decoded)
            image = images[0] if len(images) == 1 else batches.grid(images)
        else:
            stopped = not_finite_message("decoded image (VAE output)", loaded.dtype)
    except _Cancelled:
        cancelled = True
    except _NotFinite:
        stopped = not_finite_message(f"latents by model call {state['calls']} of {state['total']}", loaded.dtype)
    finally:
        for watch in (uncond_watch, start_watch, start_shown):
            if watch is not None:
                watch.remove()
    facts = run_facts(loaded, scheduler, width, height, request)
    facts["call_arguments"] = arguments
    facts["step_generator"] = watcher.hands_generator
    if init is not None:
        facts["init_image"] = {**img2img.recipe_facts(init), "pass_size": "width" in kwargs}
    if start is not None:
        facts["takes_size"] = "width" in kwargs
    if weighted:
        facts["compel"] = prompt_weighting.recipe_facts(pipe, request.prompt, request.negative_prompt)
    result = GenerationResult(
        request=request, image=image, cancelled=cancelled, elapsed_s=time.perf_counter() - started,
        model_calls=state["calls"], total_calls=state["total"], recipe=facts, stopped=stopped,
        latents=None if state.get("latents") is None else unpacked(state["latents"]),
    )
    if request.batch_size > 1 and image is not None:  # each image a run of its own; `image` is their grid
        result = dataclasses.replace(result, batch=batches.split(result, images))
    return result

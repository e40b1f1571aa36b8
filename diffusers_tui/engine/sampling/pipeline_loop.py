"""Text-to-image through a diffusers pipeline, watched step by step through its callback.

The callback sees each step's noisy latents; a wrapper around the scheduler's `step` keeps
the guided model output, so the denoised estimate can be previewed too. Cancelling raises
from the callback, which skips the remaining steps and the final decode.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import torch

from diffusers_tui.engine.preview import preview_image
from diffusers_tui.engine.request import GenerationResult, StepSnapshot
from diffusers_tui.engine.sampling.estimates import current_sigma, estimate_x0
from diffusers_tui.engine.sampling.facts import run_facts
from diffusers_tui.engine.sampling.policy import is_finite, nan_check_due, not_finite_message, preview_due


class _Cancelled(Exception):
    """Raised inside the pipeline callback: it skips the remaining steps and the VAE decode."""


class _NotFinite(Exception):
    """Raised inside the pipeline callback when the latents hold NaN or infinity."""


class _StepWatcher:
    """Wraps one scheduler's `step` to keep what a preview needs from the latest call.

    The pipeline callback only sees the noisy latents; the denoised estimate needs the
    guided model output, which only the scheduler's `step` receives.
    """

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.sigma: float | None = None
        original_step = scheduler.step

        # wraps() keeps the original signature visible: pipelines inspect it to decide
        # whether to pass `generator`, and without it ancestral samplers lose their seed.
        @functools.wraps(original_step)
        def step(model_output, timestep, sample, *args, **kwargs):
            sigma = current_sigma(scheduler, timestep)
            output = original_step(model_output, timestep, sample, *args, **kwargs)
            values = output if isinstance(output, tuple) else output.to_tuple()
            reported = values[1] if len(values) > 1 else None
            self.sigma = sigma
            # Keep references only; converting to an image happens when a preview is due.
            self._pending = (reported, model_output, sample, timestep, sigma)
            return output

        self._pending: tuple | None = None
        scheduler.step = step

    def denoised(self) -> torch.Tensor | None:
        if self._pending is None:
            return None
        reported, model_output, sample, timestep, sigma = self._pending
        if reported is not None:
            return reported
        return estimate_x0(self.scheduler, model_output, sample, timestep, sigma)


def run_pipeline(loaded, request, scheduler, width, height, on_step, cancel) -> GenerationResult:
    pipe = loaded.pipeline
    pipe.scheduler = scheduler
    watcher = _StepWatcher(scheduler)
    started = time.perf_counter()
    state = {"calls": 0, "total": 0, "last_preview": None}

    def callback(pipeline, index: int, timestep, tensors: dict) -> dict:
        if cancel.is_set():
            raise _Cancelled
        total = int(pipeline.num_timesteps)
        calls = index + 1
        if nan_check_due(calls, total, request) and not is_finite(tensors["latents"]):
            state.update(calls=calls, total=total)
            raise _NotFinite
        preview = None
        if preview_due(calls, total, request):
            source = tensors["latents"] if request.preview == "noisy" else watcher.denoised()
            if source is not None:
                preview = preview_image(loaded, source, request.preview_method)
                state["last_preview"] = preview
        state.update(calls=calls, total=total)
        on_step(StepSnapshot(step=calls, total=total, timestep=float(timestep), sigma=watcher.sigma,
                             elapsed_s=time.perf_counter() - started, preview=preview,
                             preview_kind=request.preview))
        if cancel.is_set():  # cancelled while this step was shown: skip the VAE decode too
            raise _Cancelled
        return {}

    kwargs: dict[str, Any] = dict(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        width=width,
        height=height,
        # A CPU generator gives the same starting noise on every device.
        generator=torch.Generator(device="cpu").manual_seed(request.seed),
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents"],
        # Floats, so a decode that overflowed shows up as NaN instead of a black picture.
        output_type="np",
    )
    image, cancelled, stopped = None, False, None
    try:
        with torch.inference_mode():
            decoded = pipe(**kwargs).images
        if np.isfinite(decoded).all():
            image = pipe.numpy_to_pil(decoded)[0]
        else:
            stopped = not_finite_message("decoded image (VAE output)", loaded.dtype)
    except _Cancelled:
        cancelled = True
    except _NotFinite:
        stopped = not_finite_message(f"latents by model call {state['calls']} of {state['total']}", loaded.dtype)
    return GenerationResult(
        request=request, image=image, cancelled=cancelled, elapsed_s=time.perf_counter() - started,
        model_calls=state["calls"], total_calls=state["total"], last_preview=state["last_preview"],
        recipe=run_facts(loaded, scheduler, width, height), stopped=stopped,
    )

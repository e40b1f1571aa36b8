"""Comparison lanes on a transformer pipeline, batched through the pipeline's own loop.

Every transformer here takes a timestep per sample, so lanes whose schedulers the
pipeline would treat alike (same class and starting σ, same number of model calls) run
as one pipeline call of that many images: a list of generators gives each image its solo
run's starting noise; a stand-in scheduler scales and steps each image with its lane's
own scheduler and generator; and the denoiser sees each image's own timestep (the
pipeline hands it one value for the batch, scaled as it scales timesteps). The pipeline
keeps everything else its own: text encoding, guidance, packing, the decode.
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import torch

from diffusers_tui.engine.models import families
from diffusers_tui.engine.preview.record import LatentRecorder
from diffusers_tui.engine.request import GenerationRequest, GenerationResult, StepSnapshot
from diffusers_tui.engine.sampling.facts import run_facts
from diffusers_tui.engine.sampling.pipeline_loop import _Cancelled, _StepWatcher
from diffusers_tui.engine.sampling.policy import NanWatch, not_finite_message, preview_due
from diffusers_tui.engine.sampling.preflight import accepts, check_steps, resolve_size, scheduler_for


class _LaneSchedulers:
    """Stands in for one scheduler: each image of the batch is stepped by its lane's own.

    Everything the pipeline reads (config, order, timesteps) is the first lane's: lanes in
    one batch are built alike and make the same number of calls.
    """

    def __init__(self, schedulers: list):
        self.lanes, self.calls = schedulers, 0
        #: Called after each batched step with (call index, timestep, latents), where the pipeline's own
        #: callback would skip calls (PixArt's legacy one).
        self.after_step = None
        #: How the pipeline scales a timestep for its denoiser (Flux, Qwen-Image: t / 1000), once seen.
        self.scale = 1.0
        first = schedulers[0]
        # The pipeline inspects these signatures (does set_timesteps take sigmas? step a generator?).
        self.set_timesteps = functools.wraps(first.set_timesteps)(lambda *a, **k: self._set_timesteps(*a, **k))
        self.step = functools.wraps(first.step)(lambda *a, **k: self._step(*a, **k))

    def __getattr__(self, name):
        return getattr(self.lanes[0], name)

    def _set_timesteps(self, *args, **kwargs):
        for scheduler in self.lanes:
            scheduler.set_timesteps(*args, **kwargs)
        self.calls = 0

    def scale_model_input(self, sample, timestep=None, *args, **kwargs):
        """Each image scaled by its lane's scheduler at its own timestep ([uncond lanes, text lanes] under guidance)."""
        count = len(self.lanes)
        pieces = sample.chunk(sample.shape[0] // count if sample.shape[0] % count == 0 else 1)
        own = [scheduler.timesteps[min(self.calls, len(scheduler.timesteps) - 1)] for scheduler in self.lanes]
        return torch.cat([torch.cat([scheduler.scale_model_input(part, t) for scheduler, part, t
                                     in zip(self.lanes, piece.chunk(count), own)]) for piece in pieces])

    def set_begin_index(self, begin_index: int = 0) -> None:
        for scheduler in self.lanes:
            scheduler.set_begin_index(begin_index)

    def current_timesteps(self) -> list[float]:
        """Each lane's timestep for the call about to be made."""
        return [float(scheduler.timesteps[min(self.calls, len(scheduler.timesteps) - 1)]) for scheduler in self.lanes]

    def _step(self, model_output, timestep, sample, *args, return_dict: bool = True, **kwargs):
        kwargs.pop("generator", None)  # the pipeline's list: each lane's watcher hands the lane's own
        outputs, samples = model_output.chunk(len(self.lanes)), sample.chunk(len(self.lanes))
        stepped = []
        for scheduler, output, lane_sample in zip(self.lanes, outputs, samples):
            own_t = scheduler.timesteps[min(self.calls, len(scheduler.timesteps) - 1)]
            stepped.append(scheduler.step(output, own_t, lane_sample, *args, return_dict=False, **kwargs)[0])
        self.calls += 1
        prev = torch.cat(stepped)
        if self.after_step is not None:
            self.after_step(self.calls - 1, timestep, prev)
        if return_dict:
            from diffusers.schedulers.scheduling_utils import SchedulerOutput

            return SchedulerOutput(prev_sample=prev)
        return (prev,)


def _per_image_timesteps(denoiser, lanes: _LaneSchedulers):
    """Wrap the denoiser's forward so each image gets its lane's timestep; returns the undo."""
    had_own = "forward" in denoiser.__dict__  # an offload hook's, say: put back as it was
    original = denoiser.forward

    @functools.wraps(original)
    def forward(*args, **kwargs):
        given = kwargs.get("timestep")
        if given is not None and torch.is_tensor(given) and given.ndim == 1:
            own = lanes.current_timesteps()
            if own[0]:
                lanes.scale = float(given[0]) / own[0]
            repeats = given.shape[0] // len(own)  # [uncond lanes, text lanes] under guidance
            kwargs["timestep"] = torch.tensor(own * repeats, dtype=torch.float64).mul(lanes.scale).to(
                given.device, given.dtype)
        return original(*args, **kwargs)

    denoiser.forward = forward

    def undo() -> None:
        if had_own:
            denoiser.forward = original
        else:
            del denoiser.forward
    return undo


def can_batch(loaded) -> bool:
    """Transformer pipelines whose call takes a batch of images and a step callback."""
    pipe = loaded.pipeline
    return (pipe is not None and getattr(pipe, "transformer", None) is not None
            and families.takes(pipe, "num_images_per_prompt") and families.callback_style(pipe) is not None)


def run_batch(loaded, requests: list[GenerationRequest], on_lane_step, cancel: threading.Event,
              indices: list[int]) -> list[GenerationResult]:
    """Run `requests` (same prompt, seed, size, steps and call count) as one pipeline call."""
    pipe, base = loaded.pipeline, requests[0]
    width, height = resolve_size(loaded, base)
    schedulers = [scheduler_for(loaded, request) for request in requests]
    for scheduler, request in zip(schedulers, requests):
        check_steps(scheduler, request)
    generators = [torch.Generator(device="cpu").manual_seed(request.seed) for request in requests]
    hands = families.steps_without_generator(pipe, schedulers[0])  # for the recipe: what a solo run does
    takes_generator = accepts(schedulers[0].step, "generator")
    watchers = [_StepWatcher(scheduler, generator if takes_generator else None)
                for scheduler, generator in zip(schedulers, generators)]
    lanes = _LaneSchedulers(schedulers)
    family = families.family_of(loaded)
    started = time.perf_counter()
    state = {"calls": 0, "total": 0, "recorders": None}
    nan_watches = [NanWatch() for _ in requests]
    stopped: list[str | None] = [None] * len(requests)

    def callback(pipeline, index: int, timestep, tensors: dict) -> dict:
        if cancel.is_set():
            raise _Cancelled
        total = int(getattr(pipeline, "num_timesteps", 0) or len(schedulers[0].timesteps))
        calls = index + 1
        state.update(calls=calls, total=total)
        recorders = state["recorders"] = state["recorders"] or [LatentRecorder(loaded.decoders, total)
                                                                for _ in requests]
        for lane, (watcher, latents) in enumerate(zip(watchers, tensors["latents"].chunk(len(requests)))):
            if stopped[lane]:
                continue
            record = None
            if preview_due(calls, total, requests[lane]):
                x0 = family.unpack(pipe, watcher.denoised(), width, height)
                record = recorders[lane].record(x0, family.unpack(pipe, latents, width, height))
            if not nan_watches[lane].finite(calls, total, record, latents):
                stopped[lane] = not_finite_message(f"latents by model call {calls} of {total}", loaded.dtype)
                continue
            on_lane_step(indices[lane], StepSnapshot(
                step=calls, total=total, timestep=watcher.timestep(index, timestep), sigma=watcher.sigma,
                elapsed_s=time.perf_counter() - started, latents=record, preview_kind=requests[lane].preview))
        return {}

    arguments = families.call_arguments(pipe, base)
    kwargs = dict(prompt=base.prompt, num_inference_steps=base.steps, width=width, height=height,
                  num_images_per_prompt=len(requests), generator=generators, output_type="np", **arguments)
    if families.callback_style(pipe) == "legacy":  # PixArt's callback(step, timestep, latents) skips calls
        lanes.after_step = lambda index, timestep, latents: callback(pipe, index, timestep, {"latents": latents})
    else:
        kwargs.update(callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    denoiser = families.denoiser_of(pipe)
    own_scheduler, pipe.scheduler = pipe.scheduler, lanes
    undo = _per_image_timesteps(denoiser, lanes)
    images, cancelled = None, False
    try:
        with torch.inference_mode():
            images = pipe(**kwargs).images
    except _Cancelled:
        cancelled = True
    finally:
        undo()
        pipe.scheduler = own_scheduler
    elapsed = time.perf_counter() - started
    results = []
    for lane, (request, scheduler) in enumerate(zip(requests, schedulers)):
        image = None
        if images is not None and stopped[lane] is None:
            if np.isfinite(images[lane]).all():
                image = pipe.numpy_to_pil(images[lane][None])[0]
            else:
                stopped[lane] = not_finite_message("decoded image (VAE output)", loaded.dtype)
        facts = run_facts(loaded, scheduler, width, height, request)
        facts.update(call_arguments=arguments, step_generator=hands)
        calls = nan_watches[lane].bad_call if stopped[lane] and nan_watches[lane].bad_call else state["calls"]
        results.append(GenerationResult(request=request, image=image, cancelled=cancelled, elapsed_s=elapsed,
                                        model_calls=calls, total_calls=state["total"], recipe=facts,
                                        stopped=stopped[lane]))
    return results

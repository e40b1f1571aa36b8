"""One run of a loaded model: a pipeline through its step callback, or the manual UNet loop.

`run(loaded, request, on_step, cancel)` is called from a worker thread. It reports every
model call to `on_step` as a frozen StepSnapshot, stops within one step once `cancel` is
set (skipping the final decode), and returns a GenerationResult.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import time
from typing import Any, Callable

import numpy as np
import torch

from diffusers_tui.engine import schedulers as registry
from diffusers_tui.engine.errors import RequestError, SchedulerUnavailableError
from diffusers_tui.engine.preview import current_sigma, estimate_x0, tensor_to_image
from diffusers_tui.engine.request import (MAX_SIDE, GenerationRequest, GenerationResult, StepSnapshot,
                                         check_prompt_given)

OnStep = Callable[[StepSnapshot], None]


class _Cancelled(Exception):
    """Raised inside the pipeline callback: it skips the remaining steps and the VAE decode."""


class _NotFinite(Exception):
    """Raised inside the pipeline callback when the latents hold NaN or infinity."""


def not_finite_message(where: str, dtype) -> str:
    advice = (" In float16 this is usually an overflow: try --dtype float32 or bfloat16."
              if dtype == torch.float16 else "")
    return f"the {where} became NaN or infinite: the run was stopped and its last good preview kept.{advice}"


def is_finite(tensor: torch.Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())


#: Without previews, NaN is looked for every this many model calls (and at the last):
#: reading the answer waits for the GPU, which a preview does anyway.
NAN_CHECK_EVERY = 10


def nan_check_due(calls: int, total: int, request: GenerationRequest) -> bool:
    return preview_due(calls, total, request) or calls % NAN_CHECK_EVERY == 0 or calls == total


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


def make_scheduler(loaded, name: str | None):
    """A fresh scheduler for this run, built from the model's original config."""
    if name is None:
        return type(loaded.scheduler).from_config(loaded.original_scheduler_config)
    entry = registry.get(name)
    allowed = registry.compatible_names(loaded.scheduler)
    if entry.class_name not in allowed:
        raise SchedulerUnavailableError(
            f"scheduler: {entry.name} ({entry.class_name}) is not compatible with this model's "
            f"{type(loaded.scheduler).__name__}"
        )
    try:
        return registry.build(entry, loaded.original_scheduler_config)
    except ImportError as error:
        raise SchedulerUnavailableError(f"scheduler: {entry.name} needs a package: {error}") from None


def scheduler_for(loaded, request: GenerationRequest):
    """The scheduler one run steps: fresh, and seeded where it draws noise by itself."""
    scheduler = make_scheduler(loaded, request.scheduler)
    if "noise_sampler_seed" in scheduler.config:
        # DPM SDE draws its Brownian noise from its own seed, not from the run's generator.
        scheduler = type(scheduler).from_config(scheduler.config, noise_sampler_seed=request.seed % 2**63)
    return scheduler


def resolve_size(loaded, request: GenerationRequest) -> tuple[int, int]:
    native_w, native_h = loaded.native_size
    width = request.width or native_w
    height = request.height or native_h
    multiple = loaded.size_multiple
    for field_name, value in (("width", width), ("height", height)):
        if value % multiple:
            raise RequestError(field_name, f"{value} is not a multiple of {multiple}, this model's factor "
                                           f"(use {multiple} to {MAX_SIDE} in steps of {multiple}; "
                                           f"native size {native_w}x{native_h})")
    return width, height


def check_mode(loaded, request: GenerationRequest) -> None:
    if request.mode not in ("auto", loaded.mode):
        command = "generate" if loaded.mode == "text-to-image" else "unet"
        raise RequestError("mode", f"{request.mode} does not fit this model, which runs {loaded.mode} "
                                   f"(the `{command}` command)")
    if loaded.mode == "text-to-image":
        check_prompt_given(request.prompt)


def check_steps(scheduler, request: GenerationRequest) -> None:
    """RequestError("steps") when `scheduler` cannot run `request.steps` steps to the end.

    Some schedulers fail only at their last step for some step counts (DPM++ 2M, UniPC
    and DEIS when the steps equal the model's training timesteps), or reject a count
    outright; finding that out before the model runs saves the run.
    """
    reason = _schedule_failure(type(scheduler), json.dumps(dict(scheduler.config), sort_keys=True, default=str),
                               request.steps)
    if reason is not None:
        name = request.scheduler or type(scheduler).__name__
        raise RequestError("steps", f"{name} cannot run {request.steps} steps on this model ({reason}); "
                                    "choose fewer steps or another scheduler")


@functools.lru_cache(maxsize=256)
def _schedule_failure(scheduler_class, config_json: str, steps: int) -> str | None:
    """Step a copy of the scheduler through its whole schedule on a one-pixel sample.

    About 0.1 ms a step for most schedulers (4 ms for LMS and DPM SDE), once per
    scheduler, config and step count.
    """
    try:
        trial = scheduler_class.from_config(json.loads(config_json))
    except Exception:  # noqa: BLE001 - a config JSON cannot carry (arrays, say): the run itself will tell
        return None
    kwargs = {"generator": torch.Generator().manual_seed(0)} if accepts(trial.step, "generator") else {}
    try:
        trial.set_timesteps(steps)
        sample = torch.zeros(1, 1, 1, 1)
        for timestep in trial.timesteps:
            model_input = trial.scale_model_input(sample, timestep)
            sample = trial.step(torch.zeros_like(model_input), timestep, sample, **kwargs).prev_sample
    except Exception as error:  # noqa: BLE001 - whatever the scheduler raises, the run would too
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def run(loaded, request: GenerationRequest, on_step: OnStep | None = None,
        cancel: threading.Event | None = None) -> GenerationResult:
    """Run `request` on `loaded`; see the module docstring for the contract."""
    check_mode(loaded, request)
    width, height = resolve_size(loaded, request)
    scheduler = scheduler_for(loaded, request)
    check_steps(scheduler, request)
    cancel = cancel or threading.Event()
    on_step = on_step or (lambda snapshot: None)
    if loaded.mode == "unet":
        return _run_unet_loop(loaded, request, scheduler, width, height, on_step, cancel)
    return _run_pipeline(loaded, request, scheduler, width, height, on_step, cancel)


def recipe(loaded, scheduler, width: int, height: int) -> dict[str, Any]:
    import diffusers
    import transformers

    entry = registry.entry_for_scheduler(scheduler)
    return {
        "model": loaded.source.name,
        "model_kind": loaded.source.kind,
        "model_path": str(loaded.source.path),
        "model_repo_id": loaded.source.repo_id,
        "model_revision": loaded.source.revision,
        "mode": loaded.mode,
        "scheduler_name": entry.name if entry else None,
        "scheduler_class": type(scheduler).__name__,
        "scheduler_config": {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")},
        "width": width,
        "height": height,
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "device": str(loaded.device),
        "versions": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
    }


def preview_due(calls: int, total: int, request: GenerationRequest) -> bool:
    if request.preview_method == "none":
        return False
    return calls % request.preview_every == 0 or calls == total


def preview_source(request: GenerationRequest, scheduler, output, model_output, sample, timestep, sigma):
    """What a hand-stepped loop previews: the noisy sample, or the scheduler's x0 estimate."""
    if request.preview == "noisy":
        return sample
    shown = getattr(output, "pred_original_sample", None)
    if shown is None:
        shown = estimate_x0(scheduler, model_output, sample, timestep, sigma)
    return shown


def latent_preview(loaded, latents: torch.Tensor, method: str):
    if method == "vae":
        vae = loaded.pipeline.vae
        with torch.no_grad():
            decoded = vae.decode(latents[:1].to(vae.dtype) / vae.config.scaling_factor).sample
        return tensor_to_image(decoded[0])
    return loaded.previewer.to_image(latents)


def _run_pipeline(loaded, request, scheduler, width, height, on_step, cancel) -> GenerationResult:
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
                preview = latent_preview(loaded, source, request.preview_method)
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
        recipe=recipe(loaded, scheduler, width, height), stopped=stopped,
    )


def accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _run_unet_loop(loaded, request, scheduler, width, height, on_step, cancel) -> GenerationResult:
    """The diffusers quick-start loop: set_timesteps, unet(x, t).sample, scheduler.step."""
    unet = loaded.unet
    device, dtype = loaded.device, loaded.dtype
    generator = torch.Generator(device="cpu").manual_seed(request.seed)
    scheduler.set_timesteps(request.steps, device=device)
    shape = (1, unet.config.in_channels, height, width)
    sample = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)
    sample = sample * scheduler.init_noise_sigma
    step_kwargs = {"generator": generator} if accepts(scheduler.step, "generator") else {}
    total = len(scheduler.timesteps)
    started = time.perf_counter()
    calls, last_preview, cancelled, stopped = 0, None, False, None
    with torch.inference_mode():
        for timestep in scheduler.timesteps:
            if cancel.is_set():
                cancelled = True
                break
            sigma = current_sigma(scheduler, timestep)
            model_input = scheduler.scale_model_input(sample, timestep)
            noise_pred = unet(model_input, timestep).sample
            output = scheduler.step(noise_pred, timestep, sample, **step_kwargs)
            calls += 1
            if nan_check_due(calls, total, request) and not is_finite(output.prev_sample):
                stopped = not_finite_message(f"sample by model call {calls} of {total}", dtype)
                break
            preview = None
            if preview_due(calls, total, request):
                shown = preview_source(request, scheduler, output, noise_pred, sample, timestep, sigma)
                preview = tensor_to_image(shown[0])
                last_preview = preview
            sample = output.prev_sample
            on_step(StepSnapshot(step=calls, total=total, timestep=float(timestep), sigma=sigma,
                                 elapsed_s=time.perf_counter() - started, preview=preview,
                                 preview_kind=request.preview))
    image = None if cancelled or stopped else tensor_to_image(sample[0])
    return GenerationResult(
        request=request, image=image, cancelled=cancelled, elapsed_s=time.perf_counter() - started,
        model_calls=calls, total_calls=total, last_preview=last_preview,
        recipe=recipe(loaded, scheduler, width, height), stopped=stopped,
    )

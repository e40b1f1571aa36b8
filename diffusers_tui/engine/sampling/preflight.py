"""Checks a run makes before its model runs: mode, size, scheduler, and whether its schedule can finish."""

from __future__ import annotations

import functools
import inspect
import json

import torch

from diffusers_tui.engine.errors import RequestError, SchedulerUnavailableError
from diffusers_tui.engine.request import MAX_SIDE, GenerationRequest, check_prompt_given
from diffusers_tui.engine.sampling import registry


def make_scheduler(loaded, name: str | None, schedule: str = "Automatic", run_options: dict | None = None):
    """A fresh scheduler for this run, built from the model's original config.

    No name keeps the model's own scheduler; a schedule type then applies to the sampler
    that scheduler is, when the registry knows it.
    """
    flow = registry.is_flow_scheduler(loaded.scheduler)
    if name is None:
        if schedule == "Automatic":
            return type(loaded.scheduler).from_config(loaded.original_scheduler_config)
        own = registry.entry_for_scheduler(loaded.scheduler)
        if own is None:
            raise SchedulerUnavailableError(
                f"schedule: the model's own {type(loaded.scheduler).__name__} is not in the registry; "
                "choose a scheduler for the schedule type to apply to")
        entry, schedule = registry.resolve(own[0].name, schedule, flow)
    else:
        entry, schedule = registry.resolve(name, schedule, flow)
    allowed = registry.compatible_names(loaded.scheduler)
    if entry.class_name not in allowed and not flow:  # flow entries are tried for real instead (registry.statuses)
        raise SchedulerUnavailableError(
            f"scheduler: {entry.name} ({entry.class_name}) is not compatible with this model's "
            f"{type(loaded.scheduler).__name__}"
        )
    try:
        return registry.build(entry, loaded.original_scheduler_config, schedule, run_options(entry) if run_options else {})
    except ImportError as error:
        raise SchedulerUnavailableError(f"scheduler: {entry.name} needs a package: {error}") from None


def scheduler_for(loaded, request: GenerationRequest, second_pass: bool = False):
    """The scheduler one run steps: fresh, and seeded where it draws noise by itself. `second_pass`: a hires
    fix's img2img pass (its strength, by A1111's fix-steps rule)."""
    def run_options(entry) -> dict:
        # The engine's samplers draw their noise under the run's convention, from the run's seed.
        if not entry.is_engine:
            return {}
        convention = noise_convention(entry.options["sampler"], request.noise)
        ensd = request.ensd if convention.startswith("A1111") else 0  # ComfyUI has no seed delta
        if request.batch_size > 1 and convention == "ComfyUI":
            raise RequestError("batch_size", "ComfyUI draws a batch's noise from one seed, and batches here count "
                                             "seeds up as A1111 does: use A1111 noise, or a batch count")
        options = {"seed": request.seed, "convention": convention, "ensd": ensd, "s_noise": request.s_noise,
                   "s_churn": request.s_churn, "s_tmin": request.s_tmin, "s_tmax": request.s_tmax,
                   "sampler_options": dict(request.sampler_options)}
        if request.batch_size > 1:
            options["batch_seeds"] = [request.seed + index for index in range(request.batch_size)]
        if request.init_image is not None or second_pass:  # img2img: the sampler runs its tool's part of the schedule
            from diffusers_tui.engine.sampling.img2img import strength

            options.update(denoise=strength(request), exact_steps=second_pass)
        return options if request.eta is None else {**options, "eta": request.eta}

    scheduler = make_scheduler(loaded, request.scheduler, request.schedule, run_options)
    if request.shift is not None:
        scheduler = with_shift(loaded, scheduler, request.shift)
    if "noise_sampler_seed" in scheduler.config:
        # DPM SDE draws its Brownian noise from its own seed, not from the run's generator.
        scheduler = type(scheduler).from_config(scheduler.config, noise_sampler_seed=request.seed % 2**63)
    return scheduler


def with_shift(loaded, scheduler, shift: float):
    """`scheduler` on a fixed flow shift in place of the model's own (a size-dependent shift is turned off)."""
    if not registry.is_flow_scheduler(loaded.scheduler):
        raise RequestError("shift", f"this model's {type(loaded.scheduler).__name__} is not flow-matching: a "
                                    "shift applies to flow models (SD3, Flux, demo-flow); leave shift unset")
    config = scheduler.config
    if config.get("use_flow_sigmas") and "flow_shift" in config:  # a solver's flow mode names it flow_shift
        return type(scheduler).from_config(config, flow_shift=shift)
    if "shift" not in config:
        raise RequestError("shift", f"{type(scheduler).__name__} takes no shift; choose another sampler or "
                                    "leave shift unset")
    return type(scheduler).from_config(config, shift=shift, use_dynamic_shifting=False)


def noise_convention(sampler_key: str, asked: str) -> str:
    """The convention a run's noise follows: the one asked for, or with "auto" the sampler's tool's."""
    if asked != "auto":
        return asked
    return "ComfyUI" if sampler_key.startswith("ComfyUI:") else "A1111 CPU"


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
    if type(scheduler).__name__ == registry.ENGINE_CLASS:
        # The engine's samplers run any step count, but a sampler on its own timesteps can plan no model
        # call at all: A1111's DDIM and PLMS at 1 step have t = 1 alone, and A1111 returns the noise.
        from diffusers_tui.engine.sampling.sigma.partial import NoStepsError

        try:
            scheduler.set_timesteps(request.steps)
        except NoStepsError as error:
            raise RequestError("strength", str(error)) from None
        if scheduler.expected_calls == 0:
            name = request.scheduler or "This sampler"
            raise RequestError("steps", f"{name} makes no model call at {request.steps} step (its timesteps are "
                                        "t = 1 alone, and it would return the starting noise as A1111 does); "
                                        "use 2 steps or more")
        return
    reason = _schedule_failure(type(scheduler), json.dumps(dict(scheduler.config), sort_keys=True, default=str),
                               request.steps)
    name = request.scheduler or type(scheduler).__name__
    if reason == registry.NO_DYNAMIC_SHIFT:  # no step count would do: the class itself does not fit
        raise RequestError("scheduler", f"{name} {reason}; choose another (`diffusers-tui schedulers --model M` "
                                        "lists those that run on it)")
    if reason is not None:
        raise RequestError("steps", f"{name} cannot run {request.steps} steps on this model ({reason}); "
                                    "choose another step count or another scheduler")


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
        registry.set_trial_timesteps(trial, steps)
        sample = torch.zeros(1, 1, 1, 1)
        for timestep in trial.timesteps:
            # Flow-matching schedulers take the sample as it is: they have no input scaling.
            model_input = trial.scale_model_input(sample, timestep) if hasattr(trial, "scale_model_input") else sample
            sample = trial.step(torch.zeros_like(model_input), timestep, sample, **kwargs).prev_sample
        if not torch.isfinite(sample).all():
            # KDPM2's ancestral schedule at 2 "leading" steps, say: a noise level of NaN, a run of NaN.
            return "its noise levels are not finite at this step count"
    except Exception as error:  # noqa: BLE001 - whatever the scheduler raises, the run would too
        if registry.unavailable_reason(error) == registry.NO_DYNAMIC_SHIFT:
            return registry.NO_DYNAMIC_SHIFT
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters

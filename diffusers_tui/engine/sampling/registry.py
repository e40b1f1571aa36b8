"""The scheduler registry: samplers by the names people know from A1111, and A1111's schedule types.

Every scheduler anywhere in the app comes from here. A run names a sampler ("DPM++ 2M") and a
schedule type ("Automatic", "Karras", ...), as A1111 does; the older one-name spelling ("DPM++ 2M
Karras") is read as the same pair. A scheduler is always built with `Cls.from_config(the model's
original config, **options)`, so the model's noise schedule and prediction type carry over, and
with A1111's defaults where the sampler bears an A1111 name:

- the full σ range whatever `timestep_spacing` the folder was saved with (`linspace`);
- "Automatic" is A1111's per-sampler default (Karras for DPM++ 2M, DPM++ SDE and DPM2,
  Exponential for DPM++ 2M SDE, Uniform for the rest);
- DDIM and PLMS on A1111's timesteps (`leading`, offset 1, ᾱ_prev of t=0);
- `clip_sample` and thresholding off unless the model's own config asks for them: class
  defaults would clip every latent model whose config was saved by another scheduler.

Where diffusers has no option that matches A1111, the entry's `parity` says so with the
difference measured by `benchmarks/a1111_parity.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffusers_tui.engine.errors import SchedulerUnavailableError

#: A1111's schedule types that diffusers has options for, in A1111's spelling.
SCHEDULES = ("Automatic", "Uniform", "Karras", "Exponential", "Beta", "SGM Uniform")
_SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "Uniform": {"timestep_spacing": "linspace"},
    "Karras": {"use_karras_sigmas": True},
    "Exponential": {"use_exponential_sigmas": True},
    "Beta": {"use_beta_sigmas": True},
    # k-diffusion's sgm_uniform: n timesteps evenly from the top, the last step to σ=0.
    "SGM Uniform": {"timestep_spacing": "trailing"},
}
_ALL_SIGMA_SCHEDULES = ("Uniform", "Karras", "Exponential", "Beta", "SGM Uniform")
#: A1111 samplers on the k-diffusion σ schedule start at the model's largest σ, whatever the folder says.
_FULL_RANGE = {"timestep_spacing": "linspace"}
#: A1111's DDIM and PLMS timesteps: range(0, 1000, 1000 // steps) + 1, ending on ᾱ of t=0.
_A1111_TIMESTEPS = {"timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False}
#: Keys that a class default would switch on for a model whose own config never asked for them.
_OFF_UNLESS_ASKED = ("clip_sample", "thresholding")


@dataclass(frozen=True)
class SchedulerEntry:
    """One sampler: display name -> diffusers class name + options, and the schedule types it offers."""

    name: str
    class_name: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Model calls per step: 2 for the second-order solvers (Heun, DPM2, DPM++ SDE).
    order: int = 1
    description: str = ""
    #: Whether A1111 has a sampler by this name (written as `Sampler:` in infotext only then).
    a1111: bool = True
    #: The schedule types this class has options for ("Automatic" always).
    schedules: tuple[str, ...] = ("Automatic",)
    #: What "Automatic" means for this sampler (A1111's per-sampler default); "" keeps the
    #: model's own spacing (DDIM and PLMS on A1111's timesteps, samplers A1111 lacks).
    automatic: str = ""
    #: Options every schedule of this entry gets (the full σ range, A1111's timesteps).
    base: dict[str, Any] = field(default_factory=dict)
    #: Where diffusers cannot match what A1111 runs: schedule type ("*" for all) -> why, and by how
    #: much (measured by benchmarks/a1111_parity.py on the demo, 20 steps, CFG 7).
    parity: dict[str, str] = field(default_factory=dict)

    @property
    def options_text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    def schedule_options(self, schedule: str) -> dict[str, Any]:
        """The diffusers options for this sampler on `schedule` (Automatic resolved)."""
        return {**self.base, **_SCHEDULE_OPTIONS.get(self.concrete(schedule), {}), **self.options}

    def parity_note(self, schedule: str) -> str:
        """How this sampler on `schedule` differs from A1111's ("" where it matches)."""
        return self.parity.get(schedule, self.parity.get("*", ""))

    @property
    def automatic_text(self) -> str:
        """What "Automatic" means for this sampler, in words."""
        if self.automatic:
            return self.automatic
        return "the model's shift" if self.class_name.startswith("FlowMatch") or "use_flow_sigmas" in self.options \
            else "its own timesteps"

    def concrete(self, schedule: str) -> str:
        """`schedule` with Automatic replaced by this sampler's default ("" when that is its own spacing)."""
        return self.automatic if schedule == "Automatic" else schedule


def _k(name, class_name, options=None, *, order=1, description="", schedules=_ALL_SIGMA_SCHEDULES,
       automatic="Uniform", parity=None, a1111=True, base=None):
    return SchedulerEntry(name, class_name, dict(options or {}), order, description, a1111,
                          ("Automatic", *schedules), automatic, dict(_FULL_RANGE if base is None else base), dict(parity or {}))


_SDE = {"algorithm_type": "sde-dpmsolver++"}

REGISTRY: tuple[SchedulerEntry, ...] = (
    _k("Euler", "EulerDiscreteScheduler", description="first-order, deterministic"),
    _k("Euler a", "EulerAncestralDiscreteScheduler", description="ancestral: adds noise each step",
       schedules=("Uniform", "SGM Uniform")),
    _k("Heun", "HeunDiscreteScheduler", order=2, description="second-order: 2 model calls a step"),
    _k("DPM++ 2M", "DPMSolverMultistepScheduler", automatic="Karras",
       parity={"Uniform": "diffusers' timesteps stop one step short of t=0 (last σ 0.226, A1111's 0.029): RMSE 3.5"}),
    _k("DPM++ 2M SDE", "DPMSolverMultistepScheduler", _SDE, automatic="Exponential",
       parity={"*": "the same sampler on other noise: the pipeline draws Gaussian noise from the run's generator where A1111 "
                    "draws from a Brownian tree: RMSE 22-60"}),
    _k("DPM++ SDE", "DPMSolverSDEScheduler", order=2, automatic="Karras",
       description="k-diffusion's stochastic DPM++ SDE (Brownian-tree noise); needs torchsde",
       parity={"Uniform": "diffusers interpolates σ linearly between training timesteps, k-diffusion "
                          "log-linearly: RMSE 2.2"}),
    _k("DPM2", "KDPM2DiscreteScheduler", order=2, automatic="Karras",
       parity={"*": "A1111 drops the next-to-last σ, and diffusers has no option for it: RMSE 0.7-1.2"}),
    _k("DPM2 a", "KDPM2AncestralDiscreteScheduler", order=2, automatic="Karras",
       parity={"*": "A1111 drops the next-to-last σ, and diffusers has no option for it: RMSE 0.5 "
                    "(Automatic, Karras) to 9.3 (Beta)"}),
    _k("LMS", "LMSDiscreteScheduler", description="needs scipy"),
    SchedulerEntry("DDIM", "DDIMScheduler", description="A1111's timesteps (t=951 ... 1 at 20 steps)",
                   base=dict(_A1111_TIMESTEPS)),
    SchedulerEntry("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, base=dict(_A1111_TIMESTEPS),
                   parity={"*": "A1111 stops on t=1, one model call sooner; diffusers steps on to t=0: RMSE 2.1"}),
    # A1111's UniPC keeps its own timesteps (time-uniform) and ignores the schedule type.
    _k("UniPC", "UniPCMultistepScheduler", schedules=(), automatic="",
       parity={"*": "not checked: A1111 runs its own UniPC (variant bh1, order 3), not diffusers'"}),
    _k("DDPM", "DDPMScheduler", a1111=False, base={}, schedules=(), automatic="",
       description="the original ancestral sampler; wants many steps (A1111 has none)"),
    _k("DEIS", "DEISMultistepScheduler", a1111=False, base={}, automatic="", description="A1111 has none"),
    _k("DPM++ 2S", "DPMSolverSinglestepScheduler", a1111=False, base={}, automatic="",
       schedules=("Karras", "Exponential", "Beta"),
       description="deterministic single-step DPM-Solver++(2S); A1111 has only the ancestral 2S a"),
)

_FLOW = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
_FLOW_SCHEDULES = ("Karras", "Exponential", "Beta")

#: For flow-matching models (SD3, Flux, Sana, Chroma...), under the names ComfyUI and Forge give
#: them. Automatic is the model's own shifted schedule (ComfyUI's "simple"); the shift, dynamic
#: or fixed, comes from the model's config.
FLOW_REGISTRY: tuple[SchedulerEntry, ...] = (
    SchedulerEntry("Euler", "FlowMatchEulerDiscreteScheduler", description="flow matching, first-order",
                   a1111=False, schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("Euler a", "FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True},
                   description="flow matching, fresh noise each step", a1111=False,
                   schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("Heun", "FlowMatchHeunDiscreteScheduler", order=2, a1111=False,
                   description="flow matching, second-order: 2 model calls a step"),
    SchedulerEntry("DPM++ 2M", "DPMSolverMultistepScheduler", {**_FLOW, "algorithm_type": "dpmsolver++"},
                   description="DPM-Solver++(2M) in its flow mode", a1111=False, schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {**_FLOW, "algorithm_type": "sde-dpmsolver++"},
                   description="DPM-Solver++(2M) SDE in its flow mode: fresh noise each step", a1111=False,
                   schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("UniPC", "UniPCMultistepScheduler", dict(_FLOW), description="UniPC in its flow mode",
                   a1111=False, schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("LCM", "FlowMatchLCMScheduler", description="latent consistency sampling for flow models: "
                   "for few-step (distilled) models; re-noises each step", a1111=False,
                   schedules=("Automatic", *_FLOW_SCHEDULES)),
)

_BY_NAME = {entry.name.casefold(): entry for entry in REGISTRY}
_FLOW_BY_NAME = {entry.name.casefold(): entry for entry in FLOW_REGISTRY}
#: The name of the entry that stands for a model's own scheduler and config (a request's None).
MODEL_DEFAULT = "model default"


def is_model_default(name: str | None) -> bool:
    """Whether `name` asks for the model's own scheduler ("model default", with or without "Automatic")."""
    return name is not None and " ".join(name.split()).casefold() in (MODEL_DEFAULT, MODEL_DEFAULT + " automatic")


def model_default_status(scheduler) -> "SchedulerStatus":
    """The first entry of every model's list: its own scheduler class, on its own config."""
    class_name = type(scheduler).__name__
    entry = SchedulerEntry(MODEL_DEFAULT, class_name, description=f"the model's own {class_name} and config",
                           a1111=False)
    return SchedulerStatus(entry, True)
#: Names this tool used before a sampler and its schedule were two choices.
_ALIASES = {"dpm sde": ("DPM++ SDE", "Automatic")}
_SCHEDULE_BY_NAME = {schedule.casefold(): schedule for schedule in SCHEDULES}


def names() -> list[str]:
    return [entry.name for entry in REGISTRY]


def scheduler_names() -> list[str]:
    """The model default, then every sampler name in registry order (no model needed, nothing heavy imported)."""
    return [MODEL_DEFAULT, *names()]


def schedule_names() -> list[str]:
    return list(SCHEDULES)


def get(name: str) -> SchedulerEntry:
    """The registry entry for a sampler name, old one-name spellings included, or a clear error."""
    return resolve(name)[0]


def canonical_schedule(schedule: str | None) -> str:
    """A schedule type in A1111's spelling (case-insensitive; None and "" are Automatic)."""
    if schedule is None or not str(schedule).strip():
        return "Automatic"
    found = _SCHEDULE_BY_NAME.get(str(schedule).strip().casefold().replace("_", " "))
    if found is None:
        raise SchedulerUnavailableError(f"schedule: unknown type {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    return found


def resolve(name: str, schedule: str | None = None, flow: bool = False) -> tuple[SchedulerEntry, str]:
    """(entry, schedule type) for a sampler name and a schedule type, as A1111 reads them.

    A name may carry its schedule ("DPM++ 2M Karras", A1111's older spelling); a schedule
    given beside it must then agree or be Automatic. The schedule must be one the sampler
    offers here.
    """
    key = " ".join(name.split()).casefold()
    schedule = canonical_schedule(schedule)
    by_name = _FLOW_BY_NAME if flow else _BY_NAME
    entry, named = by_name.get(key), None
    if entry is None and key in _ALIASES and not flow:
        alias, named = _ALIASES[key]
        entry = by_name[alias.casefold()]
    if entry is None:
        for suffix in sorted(SCHEDULES, key=len, reverse=True):
            if key.endswith(" " + suffix.casefold()) and key[: -len(suffix) - 1] in by_name:
                entry, named = by_name[key[: -len(suffix) - 1]], suffix
                break
    if entry is None and flow:
        raise SchedulerUnavailableError(f"scheduler: {name!r} has no flow-matching form here; this flow model "
                                        f"takes: {', '.join(entry.name for entry in FLOW_REGISTRY)}")
    if entry is None:
        raise SchedulerUnavailableError(f"scheduler: unknown name {name!r}; choose one of: {', '.join(names())}")
    if named is not None and named != "Automatic":
        if schedule not in ("Automatic", named):
            raise SchedulerUnavailableError(f"scheduler: {name!r} names the {named} schedule, "
                                            f"but the schedule type given is {schedule}")
        schedule = named
    if schedule not in entry.schedules:
        raise SchedulerUnavailableError(f"schedule: {entry.name} has no {schedule} schedule here; "
                                        f"it offers {', '.join(entry.schedules)}")
    return entry, schedule


def resolve_any(name: str, schedule: str | None = None) -> tuple[SchedulerEntry, str]:
    """`resolve` before the model is known: A1111's samplers, else the flow-only ones (LCM).
    Which form runs is decided on the model, where an unavailable one says why."""
    try:
        return resolve(name, schedule)
    except SchedulerUnavailableError:
        try:
            return resolve(name, schedule, flow=True)
        except SchedulerUnavailableError:
            pass
        raise


def lane_choice(name: str, default_schedule: str) -> tuple[SchedulerEntry, str]:
    """A comparison lane's sampler and schedule: the one its name carries, else `default_schedule`."""
    entry, schedule = resolve_any(name)
    if schedule == "Automatic" and " ".join(name.split()).casefold() == entry.name.casefold():
        return resolve_any(entry.name, default_schedule)
    return entry, schedule


def label(entry: SchedulerEntry, schedule: str) -> str:
    """One name for a sampler and its schedule: "DPM++ 2M Karras", or "DPM++ 2M" for Automatic."""
    return entry.name if schedule == "Automatic" else f"{entry.name} {schedule}"


def is_flow_scheduler(scheduler) -> bool:
    """Whether a scheduler steps a flow-matching model (its class, or a solver's flow mode):
    x_t = (1 - σ) x0 + σ noise, and the model's output is v = noise - x0."""
    config = scheduler.config
    return (type(scheduler).__name__.startswith("FlowMatch") or bool(config.get("use_flow_sigmas"))
            or config.get("prediction_type") == "flow_prediction")


def entry_for_scheduler(scheduler) -> tuple[SchedulerEntry, str] | None:
    """The sampler and schedule type that describe a live scheduler object (its own config), if any do."""
    config = dict(scheduler.config)
    table = FLOW_REGISTRY if is_flow_scheduler(scheduler) else REGISTRY
    for entry in sorted(table, key=lambda entry: -len(entry.options)):
        if entry.class_name != type(scheduler).__name__:
            continue
        if not all(config.get(key) == value for key, value in entry.options.items()):
            continue
        flagged = [name for name in ("Karras", "Exponential", "Beta")
                   if name in entry.schedules and all(config.get(k) == v for k, v in _SCHEDULE_OPTIONS[name].items())]
        if flagged:
            schedule = flagged[0]
        else:  # no σ flag: Automatic, unless Automatic would mean a flagged schedule for this sampler
            schedule = "Automatic" if entry.automatic in ("", "Uniform") else "Uniform"
        return entry, schedule
    return None


@dataclass(frozen=True)
class SchedulerStatus:
    """Whether an entry can run for a given model here, and why not when it cannot."""

    entry: SchedulerEntry
    available: bool
    reason: str = ""


def build(entry: SchedulerEntry, original_config: dict[str, Any], schedule: str = "Automatic"):
    """A fresh scheduler for `entry` on `schedule`, from the model's original config (never a mutated one)."""
    import inspect

    import diffusers

    cls = getattr(diffusers, entry.class_name)
    options = entry.schedule_options(schedule)
    accepted = inspect.signature(cls.__init__).parameters
    if entry in FLOW_REGISTRY and "flow_shift" in accepted:  # a solver's flow mode, on the model's own shift
        options.setdefault("flow_shift", original_config.get("shift", original_config.get("flow_shift", 1.0)))
    for key in _OFF_UNLESS_ASKED:
        if key in accepted and key not in original_config and key not in options:
            options[key] = False
    return cls.from_config(dict(original_config), **options)


def set_trial_timesteps(scheduler, steps: int) -> None:
    """`set_timesteps` for a trial run: a dynamically shifted flow schedule needs the pipeline's `mu`,
    which moves its sigmas but not their count, so the config's base shift stands in for it."""
    shift = {"mu": scheduler.config.get("base_shift", 0.5)} if scheduler.config.get("use_dynamic_shifting") else {}
    scheduler.set_timesteps(steps, **shift)


def statuses(original_config: dict[str, Any] | None, compatible_names: set[str] | None,
             flow: bool = False, sets_sigmas: bool = False) -> list[SchedulerStatus]:
    """Every registry entry, marked available or not for this model on this machine.

    `compatible_names` is the model scheduler's `compatibles` (None: no model loaded,
    only the machine is checked). An entry is tried for real with `from_config`, so a
    missing optional package (scipy, torchsde) shows up as the reason.
    """
    base = original_config or {}
    results = []
    # A flow model's `compatibles` name only its own class: its entries are tried for real instead.
    for entry in FLOW_REGISTRY if flow else REGISTRY:
        if compatible_names is not None and not flow and entry.class_name not in compatible_names:
            results.append(SchedulerStatus(entry, False, "not compatible with this model's scheduler"))
            continue
        try:
            trial = build(entry, base)
            if sets_sigmas and not _takes_sigmas(trial):
                results.append(SchedulerStatus(entry, False, "this pipeline hands its scheduler its own σ list, "
                                                             f"which {entry.class_name} cannot take"))
                continue
            set_trial_timesteps(trial, 2)
        except ImportError as error:
            results.append(SchedulerStatus(entry, False, f"needs a package: {error}".splitlines()[0]))
        except Exception as error:  # a scheduler that rejects this config is unavailable, not fatal
            if "'mu'" in str(error):
                reason = "cannot shift its schedule by the image size, as this model's config asks"
            else:
                reason = f"{type(error).__name__}: {error}".splitlines()[0]
            results.append(SchedulerStatus(entry, False, reason))
        else:
            results.append(SchedulerStatus(entry, True))
    return results


def _takes_sigmas(scheduler) -> bool:
    import inspect

    return "sigmas" in inspect.signature(scheduler.set_timesteps).parameters


def compatible_names(scheduler) -> set[str]:
    """Class names the model's scheduler declares compatible, itself included."""
    return {type(scheduler).__name__} | {cls.__name__ for cls in getattr(scheduler, "compatibles", [])}

"""The scheduler registry: every sampler by the name its tool gives it, and every schedule type.

Every scheduler anywhere in the app comes from here. A1111's sampler names and ComfyUI's
sampler ids run on the project's own σ-space engine (engine.sampling.sigma), through a
stand-in scheduler, with that tool's defaults; diffusers' own scheduler classes stay as
entries named "<sampler> (diffusers)". A run names a sampler ("DPM++ 2M") and a
schedule type ("Automatic", "Karras", ...), as A1111 does; the older one-name spelling ("DPM++ 2M
Karras") is read as the same pair. A scheduler is always built with `Cls.from_config(the model's
original config, **options)`, so the model's noise schedule and prediction type carry over, and
with A1111's defaults where the sampler bears an A1111 name:

- the full σ range whatever `timestep_spacing` the folder was saved with (`linspace`);
- "Automatic" is A1111's per-sampler default (Karras for DPM++ 2M, DPM++ SDE and DPM2,
  Exponential for DPM++ 2M SDE, Uniform for the rest);
- "DDIM (diffusers)" and "PLMS (diffusers)" on A1111's timesteps (`leading`, offset 1, ᾱ_prev of t=0);
- `clip_sample` and thresholding off unless the model's own config asks for them: class
  defaults would clip every latent model whose config was saved by another scheduler.

Where diffusers has no option that matches A1111, the entry's `parity` says so with the
difference measured by `benchmarks/a1111_parity.py`. The entries themselves are in entries.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers_tui.engine.errors import SchedulerUnavailableError
from diffusers_tui.engine.sampling.entries import (  # noqa: F401 - the registry's public names
    A1111_SCHEDULES, COMFYUI_SCHEDULES, ENGINE_CLASS, FLOW_REGISTRY, OFF_UNLESS_ASKED, REGISTRY, SCHEDULE_OPTIONS,
    SCHEDULES, SchedulerEntry)


class _Names:
    """Entries by exact name, and by casefolded name with A1111's and diffusers' first: "DDIM" and "Ddim"
    are A1111's, "lms karras" is A1111's LMS on Karras, and only "ddim" or "lms" spelled exactly are ComfyUI's."""

    def __init__(self, table):
        self.exact = {entry.name: entry for entry in table}
        self.folded: dict[str, SchedulerEntry] = {}
        for entry in sorted(table, key=lambda entry: entry.tool == "ComfyUI"):
            self.folded.setdefault(entry.name.casefold(), entry)

    def find(self, spelled: str) -> SchedulerEntry | None:
        return self.exact.get(spelled) or self.folded.get(spelled.casefold())

    def find_folded(self, key: str) -> SchedulerEntry | None:
        return self.folded.get(key)


_BY_NAME = _Names(REGISTRY)
_FLOW_BY_NAME = _Names(FLOW_REGISTRY)
#: The name of the entry that stands for a model's own scheduler and config (a request's None).
MODEL_DEFAULT = "model default"
def is_model_default(name: str | None) -> bool:
    """Whether `name` asks for the model's own scheduler ("model default", with or without "Automatic")."""
    return name is not None and " ".join(name.split()).casefold() in (MODEL_DEFAULT, MODEL_DEFAULT + " automatic")


def model_default_status(scheduler) -> "SchedulerStatus":
    """The first entry of every model's list: its own scheduler class, on its own config."""
    class_name = type(scheduler).__name__
    entry = SchedulerEntry(MODEL_DEFAULT, class_name, description=f"the model's own {class_name} and config",
                           a1111=False, tool="model")
    return SchedulerStatus(entry, True)
#: Names this tool used before a sampler and its schedule were two choices.
_ALIASES = {"dpm sde": ("DPM++ SDE", "Automatic")}
_SCHEDULE_BY_NAME = {schedule.casefold(): schedule for schedule in A1111_SCHEDULES}


def scheduler_entries() -> list[SchedulerEntry]:
    """The model default's stand-in, then every entry (ε-models' list): what lists show before a model loads."""
    return [SchedulerEntry(MODEL_DEFAULT, "", a1111=False, tool="model"), *REGISTRY]


def names() -> list[str]:
    return [entry.name for entry in REGISTRY]


def scheduler_names() -> list[str]:
    """The model default, then every sampler name in registry order (no model needed, nothing heavy imported)."""
    return [MODEL_DEFAULT, *names()]


def schedule_names() -> list[str]:
    return list(SCHEDULES)


def exists(name: str) -> bool:
    """Whether a sampler of exactly this name is in the registry (for ε-models)."""
    return name in _BY_NAME.exact


def get(name: str) -> SchedulerEntry:
    """The registry entry for a sampler name, old one-name spellings included, or a clear error."""
    return resolve(name)[0]


def canonical_schedule(schedule: str | None) -> str:
    """A schedule type in A1111's spelling (case-insensitive; None and "" are Automatic)."""
    if schedule is None or not str(schedule).strip():
        return "Automatic"
    if str(schedule).strip() in COMFYUI_SCHEDULES:  # ComfyUI's spelling, exactly: ComfyUI's schedule
        return str(schedule).strip()
    found = _SCHEDULE_BY_NAME.get(str(schedule).strip().casefold().replace("_", " "))
    if found is None:
        raise SchedulerUnavailableError(f"schedule: unknown type {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    return found


def resolve(name: str, schedule: str | None = None, flow: bool = False,
            prefer_a1111: bool = False) -> tuple[SchedulerEntry, str]:
    """(entry, schedule type) for a sampler name and a schedule type, as A1111 reads them.

    A name may carry its schedule ("DPM++ 2M Karras", A1111's older spelling); a schedule
    given beside it must then agree or be Automatic. The schedule must be one the sampler
    offers here.
    """
    spelled = " ".join(name.split())
    key = spelled.casefold()
    schedule = canonical_schedule(schedule)
    by_name = _FLOW_BY_NAME if flow else _BY_NAME
    # A name only diffusers' class has here ("UniPC" on a flow model, "LCM"): that class's entry.
    # An A1111 infotext's "euler" is A1111's Euler, whatever its case (`prefer_a1111`).
    entry = ((by_name.find_folded(key) if prefer_a1111 else None) or by_name.find(spelled)
             or by_name.find_folded(f"{key} (diffusers)"))
    named = None
    if entry is None and key in _ALIASES and not flow:
        alias, named = _ALIASES[key]
        entry = by_name.find(alias)
    if entry is None:
        for suffix in sorted(A1111_SCHEDULES, key=len, reverse=True):
            if key.endswith(" " + suffix.casefold()) and by_name.find_folded(key[: -len(suffix) - 1]):
                entry, named = by_name.find_folded(key[: -len(suffix) - 1]), suffix
                break
    if entry is None and flow:
        raise SchedulerUnavailableError(f"scheduler: {name!r} has no flow-matching form here; this flow model "
                                        f"takes: {', '.join(entry.name for entry in FLOW_REGISTRY)}")
    if entry is None:
        raise SchedulerUnavailableError(f"scheduler: unknown name {name!r}; {_suggestions(name, names())}")
    if named is not None and named != "Automatic":
        if schedule not in ("Automatic", named):
            raise SchedulerUnavailableError(f"scheduler: {name!r} names the {named} schedule, "
                                            f"but the schedule type given is {schedule}")
        schedule = named
    schedule = _in_its_spelling(entry, schedule)
    if schedule not in entry.schedules:
        raise SchedulerUnavailableError(f"schedule: {entry.name} has no {schedule} schedule here; "
                                        f"it offers {', '.join(entry.schedules)}")
    return entry, schedule


def _suggestions(name: str, known: list[str]) -> str:
    """The closest known names, and where the whole list is: it is too long to print in a message."""
    import difflib

    by_fold = {known_name.casefold(): known_name for known_name in reversed(known)}
    close = [by_fold[match] for match in difflib.get_close_matches(name.casefold(), list(by_fold), n=4, cutoff=0.6)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"{hint}`diffusers-tui schedulers` lists all {len(known)}"


def _in_its_spelling(entry: SchedulerEntry, schedule: str) -> str:
    """A schedule named in the other tool's spelling, as this sampler's tool spells it ("karras" for a
    ComfyUI sampler given "Karras"), where that tool has one of that name."""
    if schedule in entry.schedules:
        return schedule
    plain = schedule.casefold().replace("_", " ")
    for own in entry.schedules:
        if own.casefold().replace("_", " ") == plain:
            return own
    return schedule


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


def is_flow_config(config: dict[str, Any]) -> bool:
    """Whether a scheduler config is a flow-matching model's (its class, or a solver's flow mode)."""
    return (str(config.get("_class_name", "")).startswith("FlowMatch") or bool(config.get("use_flow_sigmas"))
            or config.get("prediction_type") == "flow_prediction" or bool(config.get("flow")))


def is_flow_scheduler(scheduler) -> bool:
    """Whether a scheduler steps a flow-matching model (its class, or a solver's flow mode):
    x_t = (1 - σ) x0 + σ noise, and the model's output is v = noise - x0."""
    return type(scheduler).__name__.startswith("FlowMatch") or is_flow_config(dict(scheduler.config))


def entry_for_scheduler(scheduler) -> tuple[SchedulerEntry, str] | None:
    """The sampler and schedule type that describe a live scheduler object (its own config), if any do."""
    config = dict(scheduler.config)
    table = FLOW_REGISTRY if is_flow_scheduler(scheduler) else REGISTRY
    if type(scheduler).__name__ == ENGINE_CLASS:
        for entry in table:
            if entry.options.get("sampler") == config.get("sampler"):
                return entry, config.get("schedule", "Automatic")
        return None
    for entry in sorted(table, key=lambda entry: -len(entry.options)):
        if entry.class_name != type(scheduler).__name__:
            continue
        if not all(config.get(key) == value for key, value in entry.options.items()):
            continue
        flagged = [name for name in ("Karras", "Exponential", "Beta")
                   if name in entry.schedules and all(config.get(k) == v for k, v in SCHEDULE_OPTIONS[name].items())]
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


def build(entry: SchedulerEntry, original_config: dict[str, Any], schedule: str = "Automatic",
          run_options: dict[str, Any] | None = None):
    """A fresh scheduler for `entry` on `schedule`, from the model's original config (never a mutated one);
    `run_options` are an engine sampler's run's own (its seed and noise convention)."""
    import inspect

    import diffusers

    if entry.is_engine:
        from diffusers_tui.engine.sampling.sigma.stand_in import SigmaSamplerScheduler

        flow = is_flow_config(original_config)
        options = {**entry.schedule_options(schedule), "flow": flow}
        if flow:  # a flow solver's shift goes by another name
            options["shift"] = original_config.get("shift", original_config.get("flow_shift", 1.0))
        return SigmaSamplerScheduler.from_config(dict(original_config), **options, **(run_options or {}))
    cls = getattr(diffusers, entry.class_name)
    options = entry.schedule_options(schedule)
    accepted = inspect.signature(cls.__init__).parameters
    if entry in FLOW_REGISTRY and "flow_shift" in accepted:  # a solver's flow mode, on the model's own shift
        options.setdefault("flow_shift", original_config.get("shift", original_config.get("flow_shift", 1.0)))
    for key in OFF_UNLESS_ASKED:
        if key in accepted and key not in original_config and key not in options:
            options[key] = False
    return cls.from_config(dict(original_config), **options)


def set_trial_timesteps(scheduler, steps: int) -> None:
    """`set_timesteps` for a trial run: a dynamically shifted flow schedule needs the pipeline's `mu`,
    which moves its sigmas but not their count, so the config's base shift stands in for it."""
    shift = {"mu": scheduler.config.get("base_shift", 0.5)} if scheduler.config.get("use_dynamic_shifting") else {}
    scheduler.set_timesteps(steps, **shift)


def sigmas_of(scheduler) -> list[float]:
    """The noise levels a scheduler set for a run steps through, first to last (with its final 0 where it
    has one): its own σ list, or, for diffusers' timestep schedulers (DDIM, PNDM, DDPM...), σ = √((1 − ᾱ)/ᾱ)
    at each of its timesteps and 0 after the last."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and len(sigmas):
        return [float(sigma) for sigma in sigmas]
    alphas = scheduler.alphas_cumprod.double()
    timesteps = [int(timestep) for timestep in scheduler.timesteps]
    return [float(((1 - alphas[t]) / alphas[t]).sqrt()) for t in timesteps] + [0.0]


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
            reason = unavailable_reason(error)
            results.append(SchedulerStatus(entry, False, reason))
        else:
            results.append(SchedulerStatus(entry, True))
    return results


#: Why a scheduler class without dynamic shifting cannot run a model whose config asks for it (Flux and kin).
NO_DYNAMIC_SHIFT = "cannot shift its schedule by the image size, as this model's config asks"


def unavailable_reason(error: Exception) -> str:
    """Why a scheduler that raised `error` on a model's config cannot run it, in the user's terms."""
    if "'mu'" in str(error):  # set_timesteps(mu=...) on a class that takes no μ
        return NO_DYNAMIC_SHIFT
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _takes_sigmas(scheduler) -> bool:
    import inspect

    return "sigmas" in inspect.signature(scheduler.set_timesteps).parameters


def compatible_names(scheduler) -> set[str]:
    """Class names the model's scheduler declares compatible, itself included; the engine's stand-in
    steps any model whose noise schedule it can read (β's, or flow matching)."""
    names = {type(scheduler).__name__} | {cls.__name__ for cls in getattr(scheduler, "compatibles", [])}
    config = dict(scheduler.config)
    if is_flow_scheduler(scheduler) or "beta_schedule" in config or config.get("trained_betas") is not None:
        names.add(ENGINE_CLASS)
    return names


@dataclass(frozen=True)
class SamplerFacts:
    """What listings say about the catalogue beside each entry: which run on flow models, the schedule names."""

    a1111_schedules: tuple[str, ...] = A1111_SCHEDULES
    comfyui_schedules: tuple[str, ...] = COMFYUI_SCHEDULES

    @staticmethod
    def runs_on_flow(name: str) -> bool | None:
        """Whether a sampler of this name runs on flow-matching models (None for the model's own)."""
        if is_model_default(name):
            return None
        return name in _FLOW_BY_NAME.exact


def sampler_facts() -> SamplerFacts:
    return SamplerFacts()

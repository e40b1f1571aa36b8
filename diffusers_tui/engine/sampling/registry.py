"""The scheduler registry: the names people know from A1111, each a diffusers class + options.

Every scheduler anywhere in the app comes from `REGISTRY`. A scheduler is always built
with `Cls.from_config(original_config, **options)` from the model's own scheduler
config, so the model's noise schedule and prediction type carry over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffusers_tui.engine.errors import SchedulerUnavailableError


@dataclass(frozen=True)
class SchedulerEntry:
    """One registry row: display name -> diffusers class name + config overrides."""

    name: str
    class_name: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Model calls per step: 2 for the second-order solvers (Heun, DPM2, DPM SDE).
    order: int = 1
    description: str = ""

    @property
    def options_text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


KARRAS = {"use_karras_sigmas": True}

# Mapping as in the diffusers scheduler overview (A1111/k-diffusion -> diffusers).
REGISTRY: tuple[SchedulerEntry, ...] = (
    SchedulerEntry("Euler", "EulerDiscreteScheduler", description="first-order, deterministic"),
    SchedulerEntry("Euler a", "EulerAncestralDiscreteScheduler", description="ancestral: adds noise each step"),
    SchedulerEntry("Heun", "HeunDiscreteScheduler", order=2, description="second-order: 2 model calls a step"),
    SchedulerEntry("DPM++ 2M", "DPMSolverMultistepScheduler"),
    SchedulerEntry("DPM++ 2M Karras", "DPMSolverMultistepScheduler", KARRAS),
    SchedulerEntry("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    SchedulerEntry("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler",
                   {"algorithm_type": "sde-dpmsolver++", **KARRAS}),
    SchedulerEntry("DPM++ SDE", "DPMSolverSinglestepScheduler"),
    SchedulerEntry("DPM++ SDE Karras", "DPMSolverSinglestepScheduler", KARRAS),
    SchedulerEntry("DPM SDE", "DPMSolverSDEScheduler", order=2,
                   description="k-diffusion's stochastic DPM++ SDE; needs torchsde"),
    SchedulerEntry("DPM2", "KDPM2DiscreteScheduler", order=2),
    SchedulerEntry("DPM2 Karras", "KDPM2DiscreteScheduler", KARRAS, order=2),
    SchedulerEntry("DPM2 a", "KDPM2AncestralDiscreteScheduler", order=2),
    SchedulerEntry("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", KARRAS, order=2),
    SchedulerEntry("LMS", "LMSDiscreteScheduler"),
    SchedulerEntry("LMS Karras", "LMSDiscreteScheduler", KARRAS, description="needs scipy"),
    SchedulerEntry("DDIM", "DDIMScheduler"),
    SchedulerEntry("DDPM", "DDPMScheduler", description="the original ancestral sampler; wants many steps"),
    SchedulerEntry("PLMS", "PNDMScheduler", {"skip_prk_steps": True}),
    SchedulerEntry("UniPC", "UniPCMultistepScheduler"),
    SchedulerEntry("DEIS", "DEISMultistepScheduler"),
)

_BY_NAME = {entry.name.casefold(): entry for entry in REGISTRY}


def names() -> list[str]:
    return [entry.name for entry in REGISTRY]


def scheduler_names() -> list[str]:
    """Every registry name, in registry order (no model needed, nothing heavy imported)."""
    return names()


def get(name: str) -> SchedulerEntry:
    """The registry entry for a display name (case-insensitive), or a clear error."""
    entry = _BY_NAME.get(name.strip().casefold())
    if entry is None:
        raise SchedulerUnavailableError(
            f"scheduler: unknown name {name!r}; choose one of: {', '.join(names())}"
        )
    return entry


def entry_for_scheduler(scheduler) -> SchedulerEntry | None:
    """The registry entry that describes a live scheduler object, if any does.

    Several entries can match one object (DPM++ 2M SDE Karras also matches DPM++ 2M
    SDE); the one whose options say the most wins.
    """
    config = dict(scheduler.config)
    matches = [
        entry for entry in REGISTRY
        if entry.class_name == type(scheduler).__name__
        and all(config.get(key) == value for key, value in entry.options.items())
    ]
    return max(matches, key=lambda entry: len(entry.options), default=None)


@dataclass(frozen=True)
class SchedulerStatus:
    """Whether an entry can run for a given model here, and why not when it cannot."""

    entry: SchedulerEntry
    available: bool
    reason: str = ""


def build(entry: SchedulerEntry, original_config: dict[str, Any]):
    """A fresh scheduler for `entry` on the model's original config (never a mutated one)."""
    import diffusers

    cls = getattr(diffusers, entry.class_name)
    return cls.from_config(dict(original_config), **entry.options)


def statuses(original_config: dict[str, Any] | None, compatible_names: set[str] | None) -> list[SchedulerStatus]:
    """Every registry entry, marked available or not for this model on this machine.

    `compatible_names` is the model scheduler's `compatibles` (None: no model loaded,
    only the machine is checked). An entry is tried for real with `from_config`, so a
    missing optional package (scipy, torchsde) shows up as the reason.
    """
    import diffusers

    base = original_config or {}
    results = []
    for entry in REGISTRY:
        if compatible_names is not None and entry.class_name not in compatible_names:
            results.append(SchedulerStatus(entry, False, "not compatible with this model's scheduler"))
            continue
        try:
            scheduler = getattr(diffusers, entry.class_name).from_config(dict(base), **entry.options)
            scheduler.set_timesteps(2)
        except ImportError as error:
            results.append(SchedulerStatus(entry, False, f"needs a package: {error}".splitlines()[0]))
        except Exception as error:  # a scheduler that rejects this config is unavailable, not fatal
            results.append(SchedulerStatus(entry, False, f"{type(error).__name__}: {error}".splitlines()[0]))
        else:
            results.append(SchedulerStatus(entry, True))
    return results


def compatible_names(scheduler) -> set[str]:
    """Class names the model's scheduler declares compatible, itself included."""
    return {type(scheduler).__name__} | {cls.__name__ for cls in getattr(scheduler, "compatibles", [])}

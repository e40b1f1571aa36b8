"""Which of a request's sampler settings (eta, s_noise, churn, sampler options) its sampler takes, and the note for
the rest.

A1111 passes each only to the k-diffusion functions that take it (sampler_extra_params), and writes it to
the infotext only then; the σ engine's samplers read them alike.
"""

from __future__ import annotations

from diffusers_tui.engine.errors import SchedulerUnavailableError
from diffusers_tui.engine.sampling import registry
from diffusers_tui.engine.sampling.sampler_options import OPTIONS
from diffusers_tui.engine.sampling.sigma import catalogue

#: Each setting, its value when not set, and why a sampler that does not take it ignores it.
SETTINGS = {
    "eta": (None, "adds no noise after the start (eta is for ancestral and SDE samplers, and DDIM)"),
    "s_noise": (1.0, "adds no noise after the start (s_noise is for ancestral and SDE samplers, and churn)"),
    "s_churn": (0.0, "has no churn (Euler, Heun and DPM2 have)"),
    "s_tmin": (0.0, "has no churn (Euler, Heun and DPM2 have)"),
    "s_tmax": (None, "has no churn (Euler, Heun and DPM2 have)"),
}
#: The engine's sampler functions that churn (Karras et al.'s S_churn, S_tmin, S_tmax, S_noise).
CHURNING = ("samplers_kdiffusion:sample_euler", "samplers_kdiffusion:sample_heun", "samplers_kdiffusion:sample_dpm_2",
            "samplers_comfy:heunpp2")


def churns(entry) -> bool:
    """Whether `entry` raises σ by S_churn at each step (A1111's and ComfyUI's Euler, Heun, DPM2, heunpp2)."""
    return entry.is_engine and catalogue.sampler(entry.options["sampler"]).function_ref in CHURNING


def takes(entry, setting: str, request) -> bool:
    """Whether `setting` of `request` (or its sampler option of that name) reaches `entry`'s sampler."""
    if setting in OPTIONS:
        return entry.is_engine and catalogue.sampler(entry.options["sampler"]).function_ref in OPTIONS[setting].functions
    if setting == "eta":
        return entry.takes_eta
    if setting == "s_noise":  # churn noise is scaled by it too, where there is churn
        return entry.takes_s_noise or (churns(entry) and request.s_churn > 0)
    return churns(entry)


def unused_settings(request, summary=None) -> tuple[str | None, tuple[str, ...]]:
    """(the sampler, the settings among SETTINGS that `request` sets and it does not take). With no sampler
    named, the model's own (from `summary`) is the one asked about."""
    name = request.scheduler or getattr(summary, "default_scheduler", None)
    given = [setting for setting, (unset, _) in SETTINGS.items() if getattr(request, setting) != unset]
    given += [name for name, _ in getattr(request, "sampler_options", ())]
    if name is None or not given:
        return name, ()
    try:
        entry, _ = registry.resolve_any(name, request.schedule)
    except SchedulerUnavailableError:
        return name, ()
    return entry.name, tuple(setting for setting in given if not takes(entry, setting, request))


def sampler_note(request, summary=None) -> str | None:
    """What a request's eta, s_noise or churn will not do with its sampler; None when all applies."""
    name, unused = unused_settings(request, summary)
    if not unused:
        return None
    reasons = dict.fromkeys(_why(setting) for setting in unused)
    values = {**{setting: getattr(request, setting, None) for setting in SETTINGS}, **dict(request.sampler_options)}
    return (f"{' and '.join(f'{setting} {values[setting]:g}' for setting in unused)} not used: {name} "
            f"{'; it '.join(reasons)}")


def _why(setting: str) -> str:
    """Why a sampler that does not take `setting` ignores it."""
    if setting in OPTIONS:
        return f"does not read {setting} ({OPTIONS[setting].about})"
    return SETTINGS[setting][1]


def comparison_notes(requests) -> tuple[str, ...]:
    """One note per setting that some lanes' samplers ignore, naming them: on an axis of that setting their
    lanes are one run repeated."""
    unused: dict[str, set] = {}
    for request in requests:
        name, settings = unused_settings(request)
        for setting in settings:
            unused.setdefault(setting, set()).add(name)
    return tuple(f"{setting} not used by {', '.join(sorted(names))}: {'it' if len(names) == 1 else 'each'} "
                 f"{_why(setting)}" for setting, names in unused.items())

"""Which of a request's noise settings (eta, s_noise) its sampler takes, and the note for those it does not."""

from __future__ import annotations

from diffusers_tui.engine.errors import SchedulerUnavailableError
from diffusers_tui.engine.sampling import registry

#: Why eta and s_noise do nothing for a sampler that takes neither.
NO_NOISE_AFTER_START = "adds no noise after the start (eta and s_noise are for ancestral and SDE samplers, eta for DDIM)"


def unused_noise_settings(request, summary=None) -> tuple[str | None, tuple[str, ...]]:
    """(the sampler, the settings among eta and s_noise that a request sets and it does not take). With no
    sampler named, the model's own (from `summary`) is the one asked about."""
    name = request.scheduler or getattr(summary, "default_scheduler", None)
    if name is None or (request.eta is None and request.s_noise == 1.0):
        return name, ()
    try:
        entry, _ = registry.resolve_any(name, request.schedule)
    except SchedulerUnavailableError:
        return name, ()
    unused = ("eta",) if request.eta is not None and not entry.takes_eta else ()
    unused += ("s_noise",) if request.s_noise != 1.0 and not entry.takes_s_noise else ()
    return entry.name, unused


def sampler_note(request, summary=None) -> str | None:
    """What a request's eta or s_noise will not do with its sampler; None when all applies."""
    name, unused = unused_noise_settings(request, summary)
    values = {"eta": request.eta, "s_noise": request.s_noise}
    return f"{' and '.join(f'{setting} {values[setting]:g}' for setting in unused)} not used: {name} " \
           f"{NO_NOISE_AFTER_START}" if unused else None

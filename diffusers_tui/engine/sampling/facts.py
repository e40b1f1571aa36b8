"""The facts of a run that its saved recipe records: model, scheduler and its config, size, dtype, versions."""

from __future__ import annotations

from typing import Any

import torch

from diffusers_tui.engine.sampling import registry


def sampler_and_schedule(scheduler, request) -> tuple[registry.SchedulerEntry | None, str]:
    """The registry sampler and the schedule type a run asked for (Automatic kept)."""
    if request.scheduler is not None:
        entry, schedule = registry.resolve(request.scheduler, request.schedule, registry.is_flow_scheduler(scheduler))
    else:
        found = registry.entry_for_scheduler(scheduler)
        if found is None:
            return None, ""
        entry, schedule = found
        if request.schedule != "Automatic":
            schedule = request.schedule
    return entry, schedule


def run_facts(loaded, scheduler, width: int, height: int, request) -> dict[str, Any]:
    import diffusers
    import transformers

    entry, schedule = sampler_and_schedule(scheduler, request)
    return {
        "model": loaded.source.name,
        "model_kind": loaded.source.kind,
        "model_path": str(loaded.source.path),
        "model_repo_id": loaded.source.repo_id,
        "model_revision": loaded.source.revision,
        "mode": loaded.mode,
        "scheduler_name": entry.name if entry else None,
        # As asked ("Automatic" kept), and what it meant: "" where the sampler keeps its own
        # timesteps (DDIM, PLMS, the samplers A1111 lacks).
        "schedule": schedule,
        "schedule_used": entry.concrete(schedule) if entry else "",
        "scheduler_label": registry.label(entry, schedule) if entry else type(scheduler).__name__,
        "pipeline_class": type(loaded.pipeline).__name__ if loaded.mode != "unet" else None,
        # Components the folder lists that this run loaded without (the snippet leaves them out too).
        "without_safety_checker": loaded.mode != "unet" and hasattr(loaded.pipeline, "safety_checker")
        and loaded.pipeline.safety_checker is None,
        "absent_components": list(getattr(loaded, "absent_components", ())),
        "scheduler_class": type(scheduler).__name__,
        "scheduler_config": {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")},
        "width": width,
        "height": height,
        "dtype": str(loaded.dtype).removeprefix("torch."),
        # Tiled decoding changes the pixels a little: the snippet tiles too.
        "vae_mode": getattr(loaded, "vae_mode", "full"),
        "device": str(loaded.device),
        "versions": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
    }

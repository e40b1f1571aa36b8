"""The facts of a run that its saved recipe records: model, scheduler and its config, size, dtype, versions."""

from __future__ import annotations

from typing import Any

import torch

from diffusers_tui.engine.sampling import registry


def run_facts(loaded, scheduler, width: int, height: int) -> dict[str, Any]:
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

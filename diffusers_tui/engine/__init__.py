"""The engine's public surface: the only module the app and the commands import from the engine.

Importing it is cheap: each name's submodule loads on first use, and torch and diffusers
only when a model does, so the app can paint before they are imported. Nothing here imports
textual, rich or rich_pixels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names, for readers and type checkers
    from diffusers_tui.engine.axes import AXIS_KINDS, Axis, parse_axis
    from diffusers_tui.engine.files.study_figures import convergence_data, schedule_data, trajectory_data
    from diffusers_tui.engine.building import build_comparison, build_request
    from diffusers_tui.engine.comparison import (DISTANCE_NAME, MAX_LANES, OWN_REFERENCE, ComparisonRequest, ComparisonResult, Lane,
                                                 LaneResult, parse_lanes, parse_reference, parse_scheduler_list,
                                                 parse_step_list)
    from diffusers_tui.engine.engine import Engine
    from diffusers_tui.engine.errors import (ModelLoadError, ModelNotFoundError, OutputError, RequestError, RunError,
                                             SchedulerUnavailableError, UnreadableFileError, UserFacingError)
    from diffusers_tui.engine.files.export import Exported
    from diffusers_tui.engine.files.history import History, HistoryEntry
    from diffusers_tui.engine.files.untrusted import read_bounded
    from diffusers_tui.engine.files.reading import Recipe
    from diffusers_tui.engine.models.catalog import ModelInfo
    from diffusers_tui.engine.models.loading import LoadOptions
    from diffusers_tui.engine.preview.live import LivePreview
    from diffusers_tui.engine.request import (DEFAULT_PROMPT, LIMITS, MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_SEED, MAX_SIDE,
                                              MAX_STEPS, PREVIEW_METHODS, GenerationRequest, GenerationResult, ModelSummary, StepSnapshot,
                                              check_whole, describe_range, parse_number, parse_size, parse_whole,
                                              random_seed)
    from diffusers_tui.engine.runtime import configure_threads, default_threads, max_threads, quiet
    from diffusers_tui.engine.text import is_clean, shown
    from diffusers_tui.engine.vocabulary import describe as describe_vocabulary
    from diffusers_tui.engine.sampling.prompt_weighting import prompt_syntax_note
    from diffusers_tui.engine.models.families import guidance_note
    from diffusers_tui.engine.files.init_image import init_image_note
    from diffusers_tui.engine.sampling.batches import cell as batch_cell
    from diffusers_tui.engine.sampling.noise_settings import sampler_note
    from diffusers_tui.engine.models.embeddings import list_embeddings
    from diffusers_tui.engine.models.loras import NamedFile, list_loras, parse_lora
    from diffusers_tui.engine.sampling.sampler_options import parse as parse_sampler_option
    from diffusers_tui.engine.vocabulary import prompt_note
    from diffusers_tui.engine.sampling.registry import (MODEL_DEFAULT, SchedulerEntry, SchedulerStatus, sampler_facts,
                                                        schedule_names, scheduler_entries, scheduler_names)

#: Each public name and the submodule it comes from. Submodules load on first use (PEP 562's module
#: __getattr__), so the app's start path imports only what its first frame needs; torch and diffusers
#: load only with a model (the stand-in scheduler imports them).
_SOURCES = {
    "build_comparison": "building", "build_request": "building",
    "AXIS_KINDS": "axes", "Axis": "axes", "parse_axis": "axes",
    "convergence_data": "files.study_figures", "schedule_data": "files.study_figures",
    "trajectory_data": "files.study_figures",
    "DISTANCE_NAME": "comparison", "OWN_REFERENCE": "comparison", "MAX_LANES": "comparison", "ComparisonRequest": "comparison",
    "ComparisonResult": "comparison", "Lane": "comparison", "LaneResult": "comparison",
    "parse_lanes": "comparison", "parse_reference": "comparison", "parse_scheduler_list": "comparison",
    "parse_step_list": "comparison",
    "Engine": "engine",
    "ModelLoadError": "errors", "ModelNotFoundError": "errors", "OutputError": "errors", "RequestError": "errors",
    "RunError": "errors", "SchedulerUnavailableError": "errors", "UnreadableFileError": "errors",
    "UserFacingError": "errors",
    "Exported": "files.export",
    "History": "files.history", "HistoryEntry": "files.history",
    "read_bounded": "files.untrusted",
    "Recipe": "files.reading",
    "ModelInfo": "models.catalog",
    "LoadOptions": "models.loading",
    "LivePreview": "preview.live",
    "DEFAULT_PROMPT": "request", "LIMITS": "request", "MAX_GUIDANCE": "request", "MAX_PROMPT_CHARS": "request",
    "MAX_SEED": "request", "MAX_SIDE": "request", "MAX_STEPS": "request", "PREVIEW_METHODS": "request",
    "GenerationRequest": "request", "GenerationResult": "request", "ModelSummary": "request",
    "StepSnapshot": "request", "check_whole": "request", "describe_range": "request", "parse_number": "request",
    "parse_size": "request", "parse_whole": "request", "random_seed": "request",
    "configure_threads": "runtime", "default_threads": "runtime", "max_threads": "runtime", "quiet": "runtime",
    "is_clean": "text", "shown": "text",
    "describe_vocabulary": "vocabulary", "prompt_note": "vocabulary",
    "prompt_syntax_note": "sampling.prompt_weighting",
    "guidance_note": "models.families", "init_image_note": "files.init_image", "batch_cell": "sampling.batches",
    "sampler_note": "sampling.noise_settings",
    "parse_lora": "models.loras", "list_loras": "models.loras", "NamedFile": "models.loras",
    "list_embeddings": "models.embeddings", "parse_sampler_option": "sampling.sampler_options",
    "MODEL_DEFAULT": "sampling.registry", "SchedulerEntry": "sampling.registry",
    "SchedulerStatus": "sampling.registry", "sampler_facts": "sampling.registry",
    "schedule_names": "sampling.registry", "scheduler_entries": "sampling.registry",
    "scheduler_names": "sampling.registry",
    "SigmaSamplerScheduler": "sampling.sigma.stand_in",
}
#: Public names that differ from their name in the submodule.
_RENAMED = {"describe_vocabulary": "describe", "parse_sampler_option": "parse", "batch_cell": "cell"}

__all__ = [
    # the facade and how it loads
    "Engine", "LoadOptions", "ModelSummary", "ModelInfo", "MODEL_DEFAULT", "SchedulerEntry", "SchedulerStatus", "scheduler_names", "schedule_names", "sampler_facts", "scheduler_entries",
    # runs and comparisons
    "GenerationRequest", "GenerationResult", "StepSnapshot", "ComparisonRequest", "ComparisonResult", "Lane",
    "LaneResult", "DISTANCE_NAME", "build_request", "build_comparison", "LivePreview", "PREVIEW_METHODS",
    "Axis", "AXIS_KINDS", "parse_axis", "OWN_REFERENCE", "convergence_data", "schedule_data", "trajectory_data",
    "prompt_note", "prompt_syntax_note", "guidance_note", "init_image_note", "batch_cell", "sampler_note", "describe_vocabulary", "parse_lora",
    "list_loras", "list_embeddings", "NamedFile", "parse_sampler_option",
    # what was kept
    "History", "HistoryEntry", "Recipe", "Exported", "read_bounded",
    # limits and parsing of typed values
    "LIMITS", "MAX_STEPS", "MAX_SEED", "MAX_SIDE", "MAX_GUIDANCE", "MAX_PROMPT_CHARS", "MAX_LANES", "DEFAULT_PROMPT",
    "describe_range", "check_whole", "parse_whole", "parse_number", "parse_size", "random_seed", "parse_lanes",
    "parse_step_list", "parse_reference", "parse_scheduler_list",
    # errors
    "UserFacingError", "RequestError", "ModelLoadError", "ModelNotFoundError", "OutputError",
    "RunError", "SchedulerUnavailableError", "UnreadableFileError",
    # untrusted text, made safe to show
    "shown", "is_clean",
    # the process
    "quiet", "configure_threads", "default_threads", "max_threads",
    # the engine's samplers as a diffusers scheduler: what a saved recipe's snippet imports
    "SigmaSamplerScheduler",
]


def __getattr__(name: str):
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), _RENAMED.get(name, name))
    globals()[name] = value  # the next use is a plain lookup
    return value

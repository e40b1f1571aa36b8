"""The engine's public surface: the only module the app and the commands import from the engine.

Importing it is cheap: torch and diffusers load only when a model does, so the app can
paint before they are imported. Nothing here imports textual, rich or rich_pixels.
"""

from __future__ import annotations

from diffusers_tui.engine.building import build_comparison, build_request
from diffusers_tui.engine.comparison import (DISTANCE_NAME, MAX_LANES, ComparisonRequest, ComparisonResult, Lane,
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
from diffusers_tui.engine.vocabulary import prompt_note
from diffusers_tui.engine.sampling.registry import (MODEL_DEFAULT, SchedulerEntry, SchedulerStatus, sampler_facts,
                                                    schedule_names, scheduler_entries, scheduler_names)

__all__ = [
    # the facade and how it loads
    "Engine", "LoadOptions", "ModelSummary", "ModelInfo", "MODEL_DEFAULT", "SchedulerEntry", "SchedulerStatus", "scheduler_names", "schedule_names", "sampler_facts", "scheduler_entries",
    # runs and comparisons
    "GenerationRequest", "GenerationResult", "StepSnapshot", "ComparisonRequest", "ComparisonResult", "Lane",
    "LaneResult", "DISTANCE_NAME", "build_request", "build_comparison", "LivePreview", "PREVIEW_METHODS",
    "prompt_note", "prompt_syntax_note", "guidance_note", "describe_vocabulary",
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
    # Loaded on first use: it imports torch and diffusers, which this module must not.
    if name == "SigmaSamplerScheduler":
        from diffusers_tui.engine.sampling.sigma.stand_in import SigmaSamplerScheduler

        return SigmaSamplerScheduler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

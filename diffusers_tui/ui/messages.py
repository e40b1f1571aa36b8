"""Every message the app's workers and screens post, each a dataclass (Textual's Message supports them).

Worker threads only post these (`post_message` is the one thread-safe call). The frequent
ones declare `can_replace`, so a queue holds only the newest frame of each kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message


# ----- a generation run (the app's one worker) -----
@dataclass
class StepRendered(Message):
    """A step finished; `pixels` is its preview already converted to cells (None: progress only)."""

    run_id: int
    snapshot: Any  # StepSnapshot
    pixels: Any

    def can_replace(self, message: Message) -> bool:
        # A newer frame of the same run supersedes one still queued: the pane shows the newest.
        return isinstance(message, StepRendered) and message.run_id == self.run_id


@dataclass
class RunFinished(Message):
    """The run ended (completed, cancelled or stopped); posted by the worker thread itself."""

    run_id: int
    result: Any  # GenerationResult: it owns its frames
    pixels: Any


@dataclass
class RunFailed(Message):
    """The run raised; `message` is what to tell the user, `field` the request field to mark."""

    run_id: int
    message: str
    field: str | None = None


# ----- models -----
@dataclass
class ModelLoaded(Message):
    """A model finished loading in the background."""

    summary: Any  # ModelSummary


@dataclass
class StudyRead(Message):
    """A saved comparison read back (engine SavedStudy) with its grid in cells, or why it could not be."""

    study: Any
    pixels: Any
    problem: str | None


@dataclass
class ScheduleComputed(Message):
    """The σ schedules for the schedule plot: `key` says for what (sampler, schedule, steps, model), so a stale
    answer is dropped; `chosen` and `own` are (label, σ values) or None; `failure` says why there are none."""

    key: tuple
    chosen: Any
    own: Any
    failure: str | None = None


@dataclass
class ModelLoadFailed(Message):
    model: str
    message: str


@dataclass
class ModelsListed(Message):
    names: list[str]
    #: The LoRA files in the LoRA folders (engine NamedFile), and what to say when there are none.
    loras: list = field(default_factory=list)
    no_loras: str = ""


@dataclass
class Notice(Message):
    """Something a background task found that the user should hear of (a save a crash cut short)."""

    text: str


# ----- pictures redrawn off the UI thread -----
@dataclass
class FrameReady(Message):
    """A frame re-rendered off the UI thread (after a resize, a scrub, or for a history picture)."""

    pixels: Any
    caption: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FrameReady)


@dataclass
class HistoryPage(Message):
    """A page of history read off the UI thread, newest first, its rows ready; `done` after the last."""

    entries: list
    rows: list
    skipped: int
    problem: str | None
    done: bool


# ----- what the user keeps -----
@dataclass
class Saved(Message):
    """An image (or a comparison's grid) was saved at `path`; `result` is the run it came from."""

    path: Path
    steps: int
    result: Any = None


@dataclass
class InitImageReady(Message):
    """The current result, saved at `path`, is to be the next run's init image (ctrl+t)."""

    path: Path


@dataclass
class Exported(Message):
    """A run's steps were exported (the engine's Exported)."""

    exported: Any


@dataclass
class SaveFailed(Message):
    message: str


# ----- a comparison (the compare screen's worker) -----
@dataclass
class LaneFrame(Message):
    """A lane's newest frame; a newer one of the same lane replaces it in the queue."""

    lane: int
    snapshot: Any
    pixels: Any

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LaneFrame) and message.lane == self.lane


@dataclass
class ComparisonDone(Message):
    result: Any  # ComparisonResult
    pixels: list


@dataclass
class ComparisonFailed(Message):
    message: str


@dataclass
class PanesRendered(Message):
    """Frames for every pane (after a scrub, a blink or a resize), converted off the UI thread."""

    frames: list[tuple[int, Any, str]]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PanesRendered)

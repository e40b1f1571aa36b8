"""What the generation worker posts to the app; every message carries its run's id."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class StepRendered(Message):
    """A step finished; `pixels` is the preview already converted to cells (or None)."""

    def __init__(self, run_id: int, snapshot: Any, pixels: Any) -> None:
        super().__init__()
        self.run_id = run_id
        self.snapshot = snapshot
        self.pixels = pixels

    def can_replace(self, message: Message) -> bool:
        # A newer frame of the same run supersedes one still queued: the pane shows the newest.
        return isinstance(message, StepRendered) and message.run_id == self.run_id


class RunFinished(Message):
    """The run ended (completed or cancelled); posted by the worker thread itself."""

    def __init__(self, run_id: int, result: Any, pixels: Any) -> None:
        super().__init__()
        self.run_id = run_id
        self.result = result
        self.pixels = pixels


class RunFailed(Message):
    """The run raised; `message` is what to tell the user."""

    def __init__(self, run_id: int, message: str, field: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.message = message
        self.field = field


class ModelLoaded(Message):
    """A model finished loading in the background; carries its scheduler statuses."""

    def __init__(self, model: str, mode: str, statuses: list, native_size: tuple[int, int],
                 notes: list[str], default_scheduler: str | None) -> None:
        super().__init__()
        self.model = model
        self.mode = mode
        self.statuses = statuses
        self.native_size = native_size
        self.notes = notes
        self.default_scheduler = default_scheduler


class ModelLoadFailed(Message):
    def __init__(self, model: str, message: str) -> None:
        super().__init__()
        self.model = model
        self.message = message


class FrameReady(Message):
    """A frame re-rendered off the UI thread (after a resize or a scrub)."""

    def __init__(self, pixels: Any, caption: str) -> None:
        super().__init__()
        self.pixels = pixels
        self.caption = caption

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FrameReady)


class Saved(Message):
    """An image (or comparison) was saved at `path`; `result` is the run it came from."""

    def __init__(self, path, steps: int, result: Any = None) -> None:
        super().__init__()
        self.path = path
        self.steps = steps
        self.result = result


class Exported(Message):
    """A run's steps were exported (engine.export.Exported)."""

    def __init__(self, exported: Any) -> None:
        super().__init__()
        self.exported = exported


class SaveFailed(Message):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class ModelsListed(Message):
    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

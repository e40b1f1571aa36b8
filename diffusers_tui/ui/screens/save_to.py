"""The save-to dialog (ctrl+o): asks for another outputs folder, for this save and the next."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class SaveToScreen(ModalScreen[str | None]):
    """Returns the folder typed (enter), or None (escape); the image stays in memory either way."""

    DEFAULT_CSS = """
    SaveToScreen { align: center middle; }
    SaveToScreen > Vertical {
        width: 76; height: auto; border: round $accent; background: $panel; padding: 1 2;
    }
    SaveToScreen Input.-bad-value { border: tall $error; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="save-to.close",
                        tooltip="Close without saving (the image stays in memory)")]

    def __init__(self, folder: str, reason: str = "") -> None:
        super().__init__()
        self.folder = folder
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.reason:
                yield Static(self.reason, id="save-to-reason")
            yield Static("Save into this folder (created if missing), now and from now on; "
                         "enter saves, escape keeps the image in memory:")
            yield Input(self.folder, id="save-to-folder", select_on_focus=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        folder = event.value.strip()
        if not folder or "\x00" in folder:
            event.input.add_class("-bad-value")
            self.app.notify("type a folder to save into", severity="error")
            return
        self.dismiss(folder)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

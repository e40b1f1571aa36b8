"""The help screen (?): every key binding with what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GENERATE_WHILE_RUNNING = (
    "Generate while a run is going cancels that run (within one step) and starts the new one."
)


class HelpScreen(ModalScreen[None]):
    """Lists the app's bindings; escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; height: auto; max-height: 90%;
        border: round $accent; background: $panel; padding: 1 2;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close", id="help.close",
                        tooltip="Close the help screen")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.listed_bindings = bindings  # not _bindings: Screen keeps its own key map there

    def compose(self) -> ComposeResult:
        lines = ["[b]diffusers-tui keys[/b]", ""]
        for binding in self.listed_bindings:
            keys = ", ".join(binding.key.split(","))
            key_id = f" [dim]({binding.id})[/dim]" if binding.id else ""
            lines.append(f"[b]{keys:<22}[/b] {binding.tooltip or binding.description}{key_id}")
        lines += ["", GENERATE_WHILE_RUNNING,
                  "Every action is also in the command palette (ctrl+p).",
                  "Rebind a key in config.toml by the id in brackets: \\[keys] generate = \"ctrl+g,f10\"."]
        with VerticalScroll():
            yield Static("\n".join(lines), markup=True)

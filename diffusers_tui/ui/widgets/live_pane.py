"""The live pane: shows the newest frame (already converted to cells) and a caption."""

from __future__ import annotations

from rich.align import Align
from rich.console import Group
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class LivePane(Widget, can_focus=True):
    """Terminal pixels of the current preview, centred, with a one-line caption under them."""

    DEFAULT_CSS = """
    LivePane {
        border: round $primary-darken-2;
        background: $surface;
        content-align: center middle;
    }
    LivePane:focus { border: round $accent; }
    """

    BINDINGS = [
        Binding("right,right_square_bracket", "app.scrub(1)", "Step >", id="scrub.next",
                tooltip="After a run: the next step's preview (the pane has focus after generate)"),
        Binding("left,left_square_bracket", "app.scrub(-1)", "Step <", id="scrub.previous",
                tooltip="After a run: the previous step's preview"),
        Binding("home", "app.scrub(-1000)", "First step", id="scrub.first", show=False,
                tooltip="After a run: the first step's preview"),
        Binding("end", "app.scrub(1000)", "Final", id="scrub.last", show=False, tooltip="After a run: the final image"),
    ]

    caption: reactive[str] = reactive("press ctrl+g to generate")

    class Resized(Message):
        """The pane's cell box changed: frames should be converted to the new size."""

        def __init__(self, cells: tuple[int, int]) -> None:
            super().__init__()
            self.cells = cells

    def on_resize(self) -> None:
        self.post_message(self.Resized(self.cell_box))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pixels = None

    @property
    def cell_box(self) -> tuple[int, int]:
        """Columns and rows the picture may use (the caption takes one row)."""
        return max(1, self.content_size.width), max(1, self.content_size.height - 1)

    def show(self, pixels, caption: str | None = None) -> None:
        self.pixels = pixels
        if caption is not None:
            self.caption = caption
        self.refresh()

    def render(self):
        caption = Text(self.caption, style="dim", justify="center")
        if self.pixels is None:
            return Align.center(caption, vertical="middle")
        return Align.center(Group(Align.center(self.pixels), caption), vertical="middle")

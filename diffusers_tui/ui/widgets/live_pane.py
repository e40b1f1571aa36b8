"""The live pane: places the newest frame's ready-made lines, centred, over a caption."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from diffusers_tui.engine import shown


class LivePane(Widget, can_focus=True):
    """Terminal pixels of the current preview, centred, with a one-line caption under them.

    Frames arrive as lists of Strips built in the worker thread; painting only pads and
    places them (the Line API), so a streaming run costs the UI thread almost nothing.
    """

    DEFAULT_CSS = """
    LivePane {
        border: round $primary-darken-2;
        background: $surface;
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

    # Not a repaint reactive: a new caption redraws its own row only (see watch_caption).
    caption: reactive[str] = reactive("press ctrl+g to generate", repaint=False)

    class Resized(Message):
        """The pane's cell box changed: frames should be converted to the new size."""

        def __init__(self, cells: tuple[int, int]) -> None:
            super().__init__()
            self.cells = cells

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strips: list[Strip] | None = None

    @property
    def cell_box(self) -> tuple[int, int]:
        """Columns and rows the picture may use (the caption takes one row)."""
        return max(1, self.content_size.width), max(1, self.content_size.height - 1)

    def on_resize(self) -> None:
        self.post_message(self.Resized(self.cell_box))

    def show(self, strips: list[Strip] | None, caption: str | None = None) -> None:
        """Show a new frame; only the rows that differ from the last frame are redrawn."""
        previous, self.strips = self.strips, strips
        rows = self._changed_rows(previous, strips)
        if caption is not None:
            self.caption = shown(caption, 500)  # names and messages from files: never a terminal escape
        if rows is None:
            self.refresh()
        elif rows:
            width = self.content_size.width
            self.refresh(*[Region(0, row, width, 1) for row in rows])

    def _top(self, rows: int) -> int:
        """The first content row of a picture `rows` high (centred, the caption under it)."""
        return max(0, (self.content_size.height - rows - 1) // 2)

    def _changed_rows(self, previous: list[Strip] | None, strips: list[Strip] | None) -> list[int] | None:
        """Content rows whose cells changed, or None when the whole pane needs redrawing."""
        if previous is None or strips is None or len(previous) != len(strips):
            return None
        if any(old.cell_length != new.cell_length for old, new in zip(previous, strips)):
            return None
        top = self._top(len(strips))
        return [top + y for y, (old, new) in enumerate(zip(previous, strips)) if old != new]

    def watch_caption(self) -> None:
        row = self._top(len(self.strips or []))
        self.refresh(Region(0, row + len(self.strips or []), self.content_size.width, 1))

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size.width, self.content_size.height
        base = self.rich_style
        picture = self.strips or []
        top = self._top(len(picture))
        if top <= y < top + len(picture):
            line = picture[y - top]
            left = max(0, (width - line.cell_length) // 2)
            return Strip.join([Strip.blank(left, base), line]).crop_extend(0, width, base)
        if y == top + len(picture):
            text = self.caption[:width].center(width)
            return Strip([Segment(text, base + Style(dim=True))], width)
        return Strip.blank(width, base)

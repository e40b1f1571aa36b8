"""The live pane: places the newest frame's ready-made lines, centred, over a caption."""

from __future__ import annotations

import time

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from diffusers_tui.engine import shown

#: Over a slow link (ui.link), rows are drawn in bands the terminal takes in BAND_S, and only while
#: what is ahead of them would wait less than MAX_OUTPUT_WAIT_S: a key's echo is never far behind.
BAND_S = 0.03
MAX_OUTPUT_WAIT_S = 0.03
#: However far behind the link looks, a band is drawn at least this often: a wrong estimate (a write slowed
#: by the machine's load, not the link) never leaves a picture undrawn.
MAX_HOLD_S = 1.0


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
        #: The newest frame's lines, and the lines as drawn (behind it while a slow link catches up).
        self.strips: list[Strip] | None = None
        self._drawn: list[Strip] | None = None
        #: For each drawn row, the frame it came from (for the bytes a row will cost), and the rows
        #: still to draw, top first.
        self._drawn_from: list = []
        self._pending: list[int] = []
        self._catch_up_timer = None
        self._last_band = time.monotonic()

    @property
    def cell_box(self) -> tuple[int, int]:
        """Columns and rows the picture may use (the caption takes one row)."""
        return max(1, self.content_size.width), max(1, self.content_size.height - 1)

    def on_resize(self) -> None:
        self.post_message(self.Resized(self.cell_box))

    def show(self, strips: list[Strip] | None, caption: str | None = None) -> None:
        """Show a new frame: the rows that differ from what is drawn are redrawn, in bands a slow link
        can take between key presses (ui.link); a newer frame replaces what is still to draw."""
        if caption is not None:
            self.caption = shown(caption, 500)  # names and messages from files: never a terminal escape
        self.strips, drawn = strips, self._drawn
        if (strips is None or drawn is None or len(drawn) != len(strips)
                or any(old.cell_length != new.cell_length for old, new in zip(drawn, strips))):
            self._drawn = list(strips) if strips is not None else None
            self._drawn_from = [strips] * len(strips or [])
            self._pending = []
            self.refresh()
            return
        self._pending = [y for y, (old, new) in enumerate(zip(drawn, strips)) if old is not new and old != new]
        if self._catch_up_timer is None:
            self._catch_up()

    def _catch_up(self) -> None:
        """Draw the next band of rows that differ from the newest frame, or wait for the link."""
        self._catch_up_timer = None
        if not self._pending or self.strips is None:
            return
        wait = getattr(self.app, "output_wait_s", lambda: 0.0)()
        held = time.monotonic() - self._last_band
        if wait > MAX_OUTPUT_WAIT_S and held < MAX_HOLD_S:
            delay = min(wait - MAX_OUTPUT_WAIT_S / 2, MAX_HOLD_S - held)
            self._catch_up_timer = self.set_timer(max(delay, 0.005), self._catch_up)
            return
        self._last_band = time.monotonic()
        rate = getattr(self.app, "output_rate", lambda: None)()
        rows, band = self._pending, self._pending
        if rate is not None:  # a slow link: as many rows as it takes in BAND_S
            allowed, spent, count = rate * BAND_S, 0.0, 0
            for y in rows:
                spent += self._row_bytes(y)
                if count and spent > allowed:
                    break
                count += 1
            band = rows[:count]
        for y in band:
            self._drawn[y], self._drawn_from[y] = self.strips[y], self.strips
        self._pending = rows[len(band):]
        top, width = self._top(len(self._drawn)), self.content_size.width
        self.refresh(*[Region(0, top + y, width, 1) for y in band])
        if self._pending:
            self._catch_up_timer = self.set_timer(BAND_S, self._catch_up)

    def _row_bytes(self, y: int) -> float:
        """About what redrawing row `y` costs the terminal: its changed cells (ui.terminal_output sends no other)."""
        new, old = self.strips, self._drawn_from[y]
        colours_known = getattr(new, "upper", None) is not None and getattr(old, "upper", None) is not None
        if not colours_known or old.upper.shape != new.upper.shape:
            return 40.0 * self._drawn[y].cell_length
        changed = int(((old.upper[y] != new.upper[y]) | (old.lower[y] != new.lower[y])).sum())
        return 10.0 + 25.0 * changed

    def _top(self, rows: int) -> int:
        """The first content row of a picture `rows` high (centred, the caption under it)."""
        return max(0, (self.content_size.height - rows - 1) // 2)

    def watch_caption(self) -> None:
        row = self._top(len(self._drawn or []))
        self.refresh(Region(0, row + len(self._drawn or []), self.content_size.width, 1))

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size.width, self.content_size.height
        base = self.rich_style
        picture = self._drawn or []
        top = self._top(len(picture))
        if top <= y < top + len(picture):
            line = picture[y - top]
            left = max(0, (width - line.cell_length) // 2)
            return Strip.join([Strip.blank(left, base), line]).crop_extend(0, width, base)
        if y == top + len(picture):
            text = self.caption[:width].center(width)
            return Strip([Segment(text, base + Style(dim=True))], width)
        return Strip.blank(width, base)

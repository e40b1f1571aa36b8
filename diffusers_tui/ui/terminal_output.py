"""The app's terminal output, sending only the cells and colours that change (a screen diff).

Textual repaints a changed line from the start of its widget's span and writes every styled
segment as `ESC[<full style>m text ESC[0m`: a half-block cell of the live pane costs about 40
bytes, and a frame repaints whole rows. This filter sits on the driver's `write`, keeps a model
of what the terminal shows (each cell's character and graphic rendition) and of its cursor and
rendition, and writes only the difference:

- a cell the terminal already shows as asked is skipped, with a cursor move before the next one
  that differs;
- a rendition is sent only as the codes that change (a reset is held back until something is
  drawn, and a cell whose upper pixel keeps its colour sends only the lower one's);
- cursor moves are held back too, and the cursor ends each write where Textual put it.

What the model cannot follow is passed through as written after everything held back, and the
model forgets what it knew: any escape other than SGR, cursor position and DEC private modes (an
erase, an image, a title), text with control characters or cells that are not one column wide,
text at an unknown cursor. The app tells it to forget on a resize. tests/ui/test_terminal_output.py
feeds the same output, filtered and not, to a terminal emulator and compares the screens.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

from functools import lru_cache

from rich.cells import get_character_cell_size
from textual.strip import SGR_STYLES

_TOKENS = re.compile(
    r"(?P<sgr>\x1b\[[0-9;]*m)"
    r"|(?P<move>\x1b\[[0-9]*(?:;[0-9]*)?H)"
    r"|(?P<mode>\x1b\[\?[0-9;]*[hl])"
    r"|(?P<other>\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P_^X].*?(?:\x1b\\|\Z)|\x1b.?)"
    r"|(?P<newline>\n)"
    r"|(?P<text>[^\x1b\n]+)",
    re.DOTALL,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COLOUR_INTRODUCERS = ("38", "48")
#: The attribute codes Textual writes (bold, dim, italic, ...): the ones the model follows.
_ATTRIBUTES = frozenset(SGR_STYLES)
_MAX_PARSED = 8192  # distinct SGR strings kept parsed; a stream of frames has thousands


@lru_cache(maxsize=4096)
def _one_column(character: str) -> bool:
    return get_character_cell_size(character) == 1


def _one_column_each(text: str) -> bool:
    """Whether every character takes exactly one cell (a wide or combining one would shift the model)."""
    return text.isascii() or all(map(_one_column, set(text)))


class Rendition(NamedTuple):
    """A graphic rendition: attribute codes, foreground and background (None: the default)."""

    attributes: frozenset = frozenset()
    fg: str | None = None
    bg: str | None = None


DEFAULT = Rendition()


def parse_sgr(parameters: str, current: Rendition | None) -> Rendition | None:
    """`current` after `ESC[<parameters>m`, or None where the result is unknown: a code the filter does
    not track (22-29, 54, 55...), or no reset first while `current` is unknown."""
    codes = parameters.split(";") if parameters else ["0"]
    if current is None:
        if codes[0] not in ("0", ""):
            return None
        current = DEFAULT
    attributes, fg, bg = set(current.attributes), current.fg, current.bg
    index = 0
    while index < len(codes):
        code = codes[index] or "0"
        number = int(code) if code.isdigit() else -1
        if code == "0":
            attributes, fg, bg = set(), None, None
        elif code in _COLOUR_INTRODUCERS:
            width = {"5": 2, "2": 4}.get(codes[index + 1] if index + 1 < len(codes) else "")
            if width is None or index + width >= len(codes):
                return None
            value = ";".join(codes[index:index + width + 1])
            fg, bg = (value, bg) if code == "38" else (fg, value)
            index += width
        elif 30 <= number <= 37 or 90 <= number <= 97:
            fg = code
        elif 40 <= number <= 47 or 100 <= number <= 107:
            bg = code
        elif code == "39":
            fg = None
        elif code == "49":
            bg = None
        elif code in _ATTRIBUTES:
            attributes.add(code)
        else:
            return None
        index += 1
    return Rendition(frozenset(attributes), fg, bg)


def _codes(rendition: Rendition) -> list[str]:
    codes = sorted(rendition.attributes, key=int)
    codes += [colour for colour in (rendition.fg, rendition.bg) if colour is not None]
    return codes


def transition(actual: Rendition | None, target: Rendition) -> str:
    """The shortest SGR that takes the terminal from `actual` (None: unknown) to `target`."""
    if actual == target:
        return ""
    if target == DEFAULT:
        return "\x1b[0m"
    if actual is None or not actual.attributes <= target.attributes:
        return "\x1b[0;" + ";".join(_codes(target)) + "m"  # an attribute goes off: start from a reset
    codes = sorted(target.attributes - actual.attributes, key=int)
    if target.fg != actual.fg:
        codes.append(target.fg if target.fg is not None else "39")
    if target.bg != actual.bg:
        codes.append(target.bg if target.bg is not None else "49")
    return "\x1b[" + ";".join(codes) + "m"


class _Row:
    """One screen row of the model: each cell's character and rendition (None: unknown)."""

    __slots__ = ("chars", "renditions")

    def __init__(self) -> None:
        self.chars: list[str | None] = []
        self.renditions: list[Rendition | None] = []

    def reach(self, end: int) -> None:
        if len(self.chars) < end:
            missing = end - len(self.chars)
            self.chars += [None] * missing
            self.renditions += [None] * missing


class TerminalOutput:
    """Rewrites terminal output to send only what differs from what the terminal already shows."""

    def __init__(self, size: tuple[int, int] | None = None) -> None:
        #: The screen's columns and rows, where known: text past the edge, or a line feed on the last
        #: row (a scroll), makes the model forget.
        self.size = size
        #: The renditions: what the terminal has (None: unknown), and what the output asked for (None:
        #: unknown, after a code the model does not follow). The output is taken to start from the
        #: default, and the terminal is reset to it before the first thing drawn.
        self.actual: Rendition | None = None
        self.wanted: Rendition | None = DEFAULT
        self.forget()
        self._parsed: dict[tuple[str, Rendition | None], Rendition | None] = {}

    def forget(self) -> None:
        """Assume nothing about the screen's cells or the cursor (after a resize, or a redraw from scratch)."""
        self.rows: dict[int, _Row] = {}
        #: The cursor: where the output put it, and where the terminal's is (None: unknown).
        self.cursor: tuple[int, int] | None = None
        self.terminal_cursor: tuple[int, int] | None = None
        #: Where a line feed held back was written from, if one is.
        self._newline_from: tuple[int, int] | None = None

    def __call__(self, text: str) -> str:
        """`text` reduced to what changes the screen."""
        out: list[str] = []
        for match in _TOKENS.finditer(text):
            kind, token = match.lastgroup, match.group()
            if kind == "text":
                self._text(token, out)
            elif kind == "sgr":
                wanted = self._parse(token[2:-1])
                if wanted is None:  # one the model cannot follow: written as it is, where it was
                    self._pass_through(token, out, moves_cursor=False)
                    self.actual = None
                self.wanted = wanted
            elif kind == "move":
                row, _, column = token[2:-1].partition(";")
                self.cursor, self._newline_from = (int(column or 1) - 1, int(row or 1) - 1), None
            elif kind == "mode":
                self._settle(out)
                out.append(token)
            elif kind == "newline":
                if self.size is None or self.cursor is None or self.cursor[1] >= self.size[1] - 1:
                    self._settle(out)
                    out.append(token)
                    self.rows.clear()  # it may have scrolled the screen
                    self.cursor = self.terminal_cursor = None
                else:
                    # Down a row, to its start or not (ONLCR): held back, since Textual moves the cursor
                    # next; written only if something is drawn where it leaves the cursor.
                    self._newline_from, self.cursor = self.cursor, None
            else:
                self._pass_through(token, out)
                self.rows.clear()  # an erase, an image, a reset: the screen is no longer known
                self.cursor = self.terminal_cursor = None
                if token in ("\x1bc", "\x1b[!p"):  # resets: the rendition too
                    self.actual = self.wanted = None
        self._settle(out)  # the terminal ends each write as the unfiltered output would leave it
        return "".join(out)

    def _text(self, text: str, out: list[str]) -> None:
        cursor, wanted = self.cursor, self.wanted
        if cursor is None or wanted is None or _CONTROL.search(text) or not _one_column_each(text):
            self._pass_through(text, out)
            self.rows.clear()
            self.cursor = None
            return
        x, y = cursor
        if self.size is not None:
            columns, lines = self.size
            if x >= columns:  # the last column was written: a wrap is pending, the text goes on below
                if y + 1 >= lines:  # ... which scrolls the screen: not modelled
                    self._write_to_last_column(y, out)
                    self._pass_through(text, out)
                    self.rows.clear()
                    self.cursor = None
                    return
                self.cursor = (0, y + 1)
                self._text(text, out)
                return
            if x + len(text) > columns:  # the part that fits, then the rest after the wrap
                self._text(text[:columns - x], out)
                self._text(text[columns - x:], out)
                return
        end = x + len(text)
        row = self.rows.get(y)
        if row is None:
            row = self.rows[y] = _Row()
        row.reach(end)
        self.cursor = (end, y)
        if row.renditions[x:end] == [wanted] * len(text) and "".join(map(str, row.chars[x:end])) == text:
            return  # already on screen
        index = 0
        while index < len(text):
            # The next run of cells that differ from the model: written; the cells before it skipped.
            while index < len(text) and row.chars[x + index] == text[index] and row.renditions[x + index] == wanted:
                index += 1
            start = index
            while index < len(text) and not (row.chars[x + index] == text[index]
                                             and row.renditions[x + index] == wanted):
                index += 1
            if start == index:
                break
            if self.terminal_cursor != (x + start, y):
                out.append(self._move((x + start, y)))
            self._settle_rendition(out)
            out.append(text[start:index])
            row.chars[x + start:x + index] = text[start:index]
            row.renditions[x + start:x + index] = [wanted] * (index - start)
            self.terminal_cursor = (x + index, y)

    def _write_to_last_column(self, y: int, out: list[str]) -> None:
        """Put the terminal's cursor on row `y`'s last column with a wrap pending, by writing that cell again."""
        columns = self.size[0]
        if self.terminal_cursor == (columns, y):
            return
        row = self.rows.get(y)
        if row is not None and len(row.chars) >= columns and row.chars[columns - 1] is not None:
            out.append(self._move((columns - 1, y)) + transition(self.actual, row.renditions[columns - 1]))
            out.append(row.chars[columns - 1])
            self.actual = row.renditions[columns - 1]
            self.terminal_cursor = (columns, y)

    def _move(self, position: tuple[int, int]) -> str:
        """A cursor move to `position`; one past the last column (a pending wrap) becomes the last column,
        which a line feed or a move leaves the same way."""
        x, y = position
        if self.size is not None:
            x = min(x, self.size[0] - 1)
        return f"\x1b[{y + 1};{x + 1}H"

    def _pass_through(self, token: str, out: list[str], moves_cursor: bool = True) -> None:
        self._settle(out)
        out.append(token)
        if moves_cursor:
            self.terminal_cursor = None

    def _settle(self, out: list[str]) -> None:
        """Bring the terminal's cursor and rendition to the output's before something is passed on."""
        if self._newline_from is not None:
            if self.terminal_cursor != self._newline_from:
                out.append(self._move(self._newline_from))
            out.append("\n")
            self._newline_from = self.terminal_cursor = None
        if self.cursor is not None and self.terminal_cursor != self.cursor:
            out.append(self._move(self.cursor))
            x, y = self.cursor  # past the last column, the move lands on it, with no wrap pending
            self.terminal_cursor = (min(x, self.size[0] - 1), y) if self.size is not None else self.cursor
        self._settle_rendition(out)

    def _settle_rendition(self, out: list[str]) -> None:
        if self.wanted is not None:
            out.append(transition(self.actual, self.wanted))
            self.actual = self.wanted

    def _parse(self, parameters: str) -> Rendition | None:
        key = (parameters, self.wanted)
        parsed = self._parsed.get(key, key)
        if parsed is key:
            if len(self._parsed) > _MAX_PARSED:
                self._parsed.clear()
            parsed = self._parsed[key] = parse_sgr(parameters, self.wanted)
        return parsed


def install(write: Callable[[str], None]) -> Callable[[str], None]:
    """A `write` for the driver: the filter in front of the original (its `output` is the filter)."""
    output = TerminalOutput()

    def filtered_write(data: str) -> None:
        write(output(data))

    filtered_write.output = output
    return filtered_write

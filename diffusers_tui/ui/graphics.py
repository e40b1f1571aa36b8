"""How the app shows a finished image: Kitty graphics or Sixel through textual-image, else half-blocks.

The choice is made once, before the app starts: the terminal can only be asked (an
escape sequence and its answer on stdin) while Textual is not yet reading stdin.
Half-blocks stay the live pane's renderer and the fallback everywhere else.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Callable, Mapping

from diffusers_tui.settings import GRAPHICS

KINDS = tuple(kind for kind in GRAPHICS if kind != "auto")


def choose(requested: str | None, probe: Callable[[], str] | None = None,
           environ: Mapping[str, str] = os.environ, is_tty: bool | None = None,
           warn: Callable[[str], None] | None = None) -> str:
    """'halfblock', 'kitty' or 'sixel': as forced, or detected for 'auto' (None).

    Anything that goes wrong while asking or measuring the terminal falls back to
    half-blocks, with the reason passed to `warn`: a picture is never worth a crash.
    """
    requested = requested or "auto"
    if requested == "halfblock":
        return requested
    if requested == "auto":
        if is_tty is None:
            is_tty = bool(sys.__stdout__ and sys.__stdout__.isatty() and sys.__stdin__ and sys.__stdin__.isatty())
        # Inside tmux or screen, graphics need passthrough configured: half-blocks always work.
        if not is_tty or environ.get("TMUX") or environ.get("TERM", "").startswith(("screen", "tmux")):
            return "halfblock"
    try:
        kind = requested if requested in KINDS else (probe or _probe_terminal)()
        if kind != "halfblock":
            _prepare()
    except Exception as error:  # noqa: BLE001 - textual-image asking a terminal that answers oddly
        if warn is not None:
            warn(f"graphics: could not {'use ' + requested if requested in KINDS else 'ask the terminal'} "
                 f"({type(error).__name__}: {error}); using half-blocks")
        return "halfblock"
    return kind


#: kitty draws textual-image's Kitty images through Unicode placeholders, which it knows from 0.28 on;
#: 0.26.5 (Debian 12's) reads them as a malformed command and draws a grid of boxes.
KITTY_PLACEHOLDERS_SINCE = (0, 28)
_KITTY_VERSION = re.compile(r"kitty\((\d+)\.(\d+)")


#: Asked in one write, answered in order: the name and version (XTVERSION), whether Kitty's graphics protocol
#: is spoken (a query that draws nothing), and the device attributes (DA1). Every terminal answers DA1, so
#: its answer ends the wait: one round trip, where asking textual-image's way waits out a 0.1 s timeout for
#: each question a terminal does not answer.
_QUERIES = "\x1b[>0q" "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\" "\x1b[c"
_DEVICE_ATTRIBUTES = re.compile(r"\x1b\[\?([\d;]*)c")
_KITTY_GRAPHICS_OK = re.compile(r"\x1b_Gi=31;OK\x1b\\")
_VERSION = re.compile(r"\x1bP>\|(.*?)\x1b\\")
#: How long to wait for a terminal that answers nothing at all (not even DA1).
NO_ANSWER_S = 0.5


def _probe_terminal(ask: Callable[[], str] | None = None) -> str:
    """What the terminal shows images with, from its answers: Sixel where DA1 lists it (attribute 4), else
    Kitty's graphics where the query is answered OK, as textual-image decides; a kitty too old for the
    placeholders textual-image draws with is left to half-blocks."""
    return kind_from_answers((ask or ask_terminal)())


def kind_from_answers(answers: str) -> str:
    """'sixel', 'kitty' or 'halfblock' from what the terminal answered to _QUERIES."""
    attributes = _DEVICE_ATTRIBUTES.search(answers)
    if attributes and "4" in attributes.group(1).split(";"):
        return "sixel"
    if _KITTY_GRAPHICS_OK.search(answers):
        version = _VERSION.search(answers)
        return "kitty" if placeholders_supported(version.group(1) if version else None) else "halfblock"
    return "halfblock"


def ask_terminal(timeout: float = NO_ANSWER_S) -> str:
    """The terminal's answers to _QUERIES, read from stdin until its DA1 answer (or `timeout`)."""
    import select
    import termios
    import time
    import tty

    stdin = sys.__stdin__.fileno()
    saved = termios.tcgetattr(stdin)
    answers = b""
    try:
        tty.setcbreak(stdin, termios.TCSANOW)  # answers are read as they come, and not echoed
        sys.__stdout__.write(_QUERIES)
        sys.__stdout__.flush()
        deadline = time.monotonic() + timeout
        while not _DEVICE_ATTRIBUTES.search(answers.decode("latin-1")):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([stdin], [], [], remaining)[0]:
                break
            answers += os.read(stdin, 1024)
    finally:
        termios.tcsetattr(stdin, termios.TCSANOW, saved)
    return answers.decode("latin-1")


def placeholders_supported(version: str | None) -> bool:
    """Whether a terminal that speaks Kitty's graphics protocol draws its Unicode placeholders, by the name and
    version it gives to XTVERSION ("kitty(0.26.5)"); terminals that give none, or another name, are trusted."""
    found = _KITTY_VERSION.search(version or "")
    return found is None or (int(found.group(1)), int(found.group(2))) >= KITTY_PLACEHOLDERS_SINCE


def _prepare() -> None:
    """textual-image measures the terminal's cell size on import; that too must precede the app."""
    import textual_image.widget  # noqa: F401

    _end_sixels_where_textual_continues()


def _end_sixels_where_textual_continues() -> None:
    """textual-image writes a Sixel image while Textual writes the image's last row, then moves the cursor
    to the cell after the image one row further down; Textual goes on writing that row's remaining cells
    (the pane's right border) there, so a stale border cell was left beside the picture after a focus
    change. The cursor is put where Textual expects it: after the image, on the row being written."""
    from rich.control import Control
    from textual_image.widget import sixel

    implementation = getattr(sixel, "_ImageSixelImpl", None)
    original = getattr(implementation, "_get_sixel_segments", None)
    if original is None or getattr(original, "ends_on_its_row", False):
        return  # another textual-image: its own placement stands

    def segments(self, sixel_data: str):
        found = list(original(self, sixel_data))
        region = self.screen.find_widget(self).visible_region
        if found and found[-1].text == Control.move_to(region.right, region.bottom).segment.text:
            found[-1] = type(found[-1])(Control.move_to(region.right, region.bottom - 1).segment.text,
                                        style=found[-1].style)
        return found

    segments.ends_on_its_row = True
    implementation._get_sixel_segments = segments


def widget_class(kind: str):
    """The textual-image widget class for `kind`, or None for half-blocks."""
    if kind == "halfblock":
        return None
    from textual_image.widget import SixelImage, TGPImage

    return {"kitty": TGPImage, "sixel": SixelImage}[kind]


def final_image_class(kind: str):
    """A focusable textual-image widget for `kind` that scrubs like the live pane it stands in for."""
    from diffusers_tui.ui.widgets.live_pane import LivePane

    base = widget_class(kind)
    namespace = {
        "BINDINGS": LivePane.BINDINGS,
        "can_focus": True,
        "DEFAULT_CSS": """
        FinalImage { display: none; width: auto; height: 1fr; border: round $primary-darken-2; }
        FinalImage:focus { border: round $accent; }
        """,
        "__doc__": f"The finished image drawn with {kind} graphics; left/right walk back into the steps.",
    }
    return type("FinalImage", (base,), namespace, Renderable=base._Renderable)

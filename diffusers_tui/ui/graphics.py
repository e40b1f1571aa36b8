"""How the app shows a finished image: Kitty graphics or Sixel through textual-image, else half-blocks.

The choice is made once, before the app starts: the terminal can only be asked (an
escape sequence and its answer on stdin) while Textual is not yet reading stdin.
Half-blocks stay the live pane's renderer and the fallback everywhere else.
"""

from __future__ import annotations

import os
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


def _probe_terminal() -> str:
    """Ask the terminal through textual-image's own detection (Sixel first, then Kitty's protocol)."""
    from textual_image.renderable import Image, SixelImage, TGPImage

    return {SixelImage: "sixel", TGPImage: "kitty"}.get(Image, "halfblock")


def _prepare() -> None:
    """textual-image measures the terminal's cell size on import; that too must precede the app."""
    import textual_image.widget  # noqa: F401


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

"""The app's pictures as terminal cells: the colour depth, the size in a cell box, and the conversion.

The conversion itself (cells.py: numpy, Pillow, rich-pixels) is imported on the first frame, so it
is not on the app's way to its first paint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image
    from textual.strip import Strip


def colour_depth_for(color_system: str | None) -> str:
    """The depth frames are rendered at for Rich's colour system: "truecolor", or "256" (dithered)."""
    return "truecolor" if color_system in ("truecolor", None) else "256"


def colour_depth_note(color_system: str | None) -> list[str]:
    """What the log says about the colours the terminal was found to have (short lines: the log does not wrap)."""
    if colour_depth_for(color_system) == "truecolor":
        return [f"colours: 24-bit ({color_system or 'no terminal'})"]
    return [f"colours: {color_system} detected; frames are dithered to xterm's 256-colour palette",
            "  for 24-bit colour: start it with COLORTERM=truecolor set; inside tmux, also",
            "  add set -as terminal-features ',*:RGB' to ~/.tmux.conf (then restart tmux)"]


def fit_pixels(image_size: tuple[int, int], cells: tuple[int, int]) -> tuple[int, int]:
    """The largest (width, height) in pixels that keeps the aspect ratio inside `cells`.

    A cell is one pixel wide and two pixels tall, so a 64x32-cell box holds 64x64 px.
    """
    width, height = image_size
    box_width, box_height = max(1, cells[0]), max(1, cells[1]) * 2
    scale = min(box_width / width, box_height / height)
    fitted_width = max(1, int(width * scale))
    fitted_height = max(2, int(height * scale) // 2 * 2)
    return fitted_width, fitted_height


#: A live frame keeps a cell's colour from the frame before while it stays within this many levels
#: (of 255, each channel) of its own: no one sees a step of 2, late steps move most cells by about
#: that much, and an unchanged cell costs the terminal nothing (ui.terminal_output). Still pictures
#: and the finished image are exact.
LIVE_TOLERANCE = 2


def render_strips(image: Image.Image, cells: tuple[int, int], depth: str = "truecolor",
                  previous: list[Strip] | None = None) -> list[Strip]:
    """Terminal pixels for `image`, fitted to `cells` (columns, rows), as ready-made Textual
    lines: the UI thread only places them. `depth` "256" dithers to xterm's palette.

    `previous`: the last live frame's lines, whose cell colours are kept where the new ones are
    within LIVE_TOLERANCE of them."""
    from diffusers_tui.ui.cells import strips_for

    return strips_for(image, fit_pixels(image.size, cells), depth, previous, LIVE_TOLERANCE if previous else 0)

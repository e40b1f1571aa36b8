"""PIL image -> terminal pixels (half-blocks, two pixels per cell), sized to a cell box.

Runs in worker threads: building segments is pure computation. The renderer caches
styles per colour pair and merges runs of equal cells, which rich-pixels' own
half-cell renderer (one parsed style string per cell) does not.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich_pixels import Pixels, Renderer
from textual.strip import Strip

LOWER_HALF = "▄"  # foreground paints the lower pixel, background the upper one


@lru_cache(maxsize=65536)
def _style(upper: tuple[int, int, int], lower: tuple[int, int, int]) -> Style:
    return Style(color=Color.from_rgb(*lower), bgcolor=Color.from_rgb(*upper))


class FastHalfcellRenderer(Renderer):
    """A rich-pixels Renderer: cached styles, one segment per run of equal cells."""

    def render(self, image: Image.Image, resize: tuple[int, int] | None) -> list[Segment]:
        rgb = image.convert("RGB")
        if resize and rgb.size != resize:
            rgb = rgb.resize(resize, Image.NEAREST)
        pixels = np.asarray(rgb)
        if pixels.shape[0] % 2:
            pixels = np.concatenate([pixels, pixels[-1:]], axis=0)
        segments: list[Segment] = []
        newline = Segment("\n")
        for y in range(0, pixels.shape[0], 2):
            upper_row = pixels[y].tolist()
            lower_row = pixels[y + 1].tolist()
            run_style, run_length = None, 0
            for upper, lower in zip(upper_row, lower_row):
                style = _style(tuple(upper), tuple(lower))
                if style is run_style:
                    run_length += 1
                    continue
                if run_style is not None:
                    segments.append(Segment(LOWER_HALF * run_length, run_style))
                run_style, run_length = style, 1
            if run_style is not None:
                segments.append(Segment(LOWER_HALF * run_length, run_style))
            segments.append(newline)
        return segments


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


_RENDERER = FastHalfcellRenderer()


def _fitted_segments(image: Image.Image, cells: tuple[int, int]) -> list[Segment]:
    size = fit_pixels(image.size, cells)
    # Upscaling stays crisp (nearest); shrinking averages (a 512 px image into 64 columns).
    method = Image.NEAREST if size[0] >= image.size[0] else Image.LANCZOS
    return _RENDERER.render(image.convert("RGB").resize(size, method), None)


def render_frame(image: Image.Image, cells: tuple[int, int]) -> Pixels:
    """Terminal pixels for `image`, fitted to a box of `cells` (columns, rows), as rich-pixels."""
    return Pixels.from_segments(_fitted_segments(image, cells))


def render_strips(image: Image.Image, cells: tuple[int, int]) -> list[Strip]:
    """The same frame as ready-made Textual lines: the UI thread only places them."""
    lines: list[Strip] = []
    row: list[Segment] = []
    for segment in _fitted_segments(image, cells):
        if segment.text == "\n":
            lines.append(Strip(row, sum(len(s.text) for s in row)))
            row = []
        else:
            row.append(segment)
    return lines

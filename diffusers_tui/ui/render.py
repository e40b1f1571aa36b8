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
from rich_pixels import Renderer
from textual.strip import Strip

LOWER_HALF = "▄"  # foreground paints the lower pixel, background the upper one


@lru_cache(maxsize=65536)
def _style(upper: int, lower: int) -> Style:
    """The style of one cell; colours are packed as 0xRRGGBB so the cache key is cheap."""
    return Style(color=Color.from_rgb(lower >> 16, (lower >> 8) & 255, lower & 255),
                 bgcolor=Color.from_rgb(upper >> 16, (upper >> 8) & 255, upper & 255))


class FastHalfcellRenderer(Renderer):
    """A rich-pixels Renderer: cached styles, one segment per run of equal cells."""

    def rows(self, image: Image.Image) -> list[list[Segment]]:
        """The segments of each cell row (two pixel rows), without line breaks."""
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint32)
        if pixels.shape[0] % 2:
            pixels = np.concatenate([pixels, pixels[-1:]], axis=0)
        packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
        rows = []
        for y in range(0, packed.shape[0], 2):
            segments: list[Segment] = []
            run_style, run_length = None, 0
            for upper, lower in zip(packed[y].tolist(), packed[y + 1].tolist()):
                style = _style(upper, lower)
                if style is run_style:
                    run_length += 1
                    continue
                if run_style is not None:
                    segments.append(Segment(LOWER_HALF * run_length, run_style))
                run_style, run_length = style, 1
            if run_style is not None:
                segments.append(Segment(LOWER_HALF * run_length, run_style))
            rows.append(segments)
        return rows

    def render(self, image: Image.Image, resize: tuple[int, int] | None) -> list[Segment]:
        if resize and image.size != resize:
            image = image.resize(resize, Image.NEAREST)
        newline = Segment("\n")
        return [segment for row in self.rows(image) for segment in [*row, newline]]


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


def render_strips(image: Image.Image, cells: tuple[int, int]) -> list[Strip]:
    """Terminal pixels for `image`, fitted to `cells` (columns, rows), as ready-made Textual
    lines: the UI thread only places them."""
    size = fit_pixels(image.size, cells)
    # Upscaling stays crisp (nearest); shrinking averages (a 512 px image into 64 columns).
    method = Image.NEAREST if size[0] >= image.size[0] else Image.LANCZOS
    fitted = image.convert("RGB").resize(size, method)
    return [Strip(row, size[0]) for row in _RENDERER.rows(fitted)]

"""PIL image -> terminal pixels (half-blocks, two pixels per cell), sized to a cell box.

Imported on the first frame (render.py defers it), so numpy, Pillow and rich-pixels are not on
the app's way to its first paint.

Runs in worker threads: building segments is pure computation. The renderer caches
colours (not colour pairs: a noisy preview has few repeated pairs), builds styles with
`Style.from_color` and merges runs of equal cells, which rich-pixels' own half-cell
renderer (one parsed style string per cell) does not.
"""

from __future__ import annotations

from functools import partial
from itertools import repeat

import numpy as np
from PIL import Image
from rich.color import Color, ColorTriplet, ColorType
from rich.segment import Segment
from rich.style import Style
from rich_pixels import Renderer
from textual.strip import Strip

LOWER_HALF = "▄"  # foreground paints the lower pixel, background the upper one


#: Colours already built, by 0xRRGGBB; emptied when it grows past `MAX_CACHED_COLOURS`.
_COLOURS: dict[int, Color] = {}
MAX_CACHED_COLOURS = 16384
# NamedTuples built straight from a tuple, in C: their Python constructors were half the
# cost of a noisy frame (about 4,000 new colours and 2,000 segments).
_new_triplet = partial(tuple.__new__, ColorTriplet)
_new_colour = partial(tuple.__new__, Color)
_new_segment = partial(tuple.__new__, Segment)


def _colour_table(packed: np.ndarray) -> dict[int, Color]:
    """Rich truecolor colours for every 0xRRGGBB value in `packed`.

    Building colours is most of a cell's cost, so each distinct value is built once per
    frame (or never, when an earlier frame had it), and directly: `Color.from_rgb` makes
    the same value but its name formatting takes two thirds of its time.
    """
    table = _COLOURS
    if len(table) > MAX_CACHED_COLOURS:
        table.clear()  # a stream of noisy frames would otherwise grow it without end
    new = [value for value in np.unique(packed).tolist() if value not in table]
    triplets = map(_new_triplet, [(v >> 16, (v >> 8) & 255, v & 255) for v in new])
    names = ["#%06x" % value for value in new]
    table.update(zip(new, map(_new_colour, zip(names, repeat(ColorType.TRUECOLOR), repeat(None), triplets))))
    return table


#: xterm's 256-colour palette from 16 up (the 6x6x6 cube, then the grey ramp); 0-15
#: are left out: every terminal theme sets those sixteen differently.
_CUBE_LEVELS = (0, 95, 135, 175, 215, 255)
XTERM_PALETTE = [(r, g, b) for r in _CUBE_LEVELS for g in _CUBE_LEVELS for b in _CUBE_LEVELS] + [
    (8 + 10 * i,) * 3 for i in range(24)]
_FIRST_XTERM_INDEX = 16
_EIGHT_BIT: dict[int, Color] = {}


def _palette_image() -> Image.Image:
    palette = Image.new("P", (1, 1))
    flat = [value for rgb in XTERM_PALETTE for value in rgb]
    palette.putpalette(flat + flat[-3:] * (256 - len(XTERM_PALETTE)))  # padding repeats the last grey
    return palette


_PALETTE_IMAGE = _palette_image()


def dither_to_xterm(image: Image.Image) -> np.ndarray:
    """xterm colour numbers (16-255) for every pixel, Floyd-Steinberg dithered.

    Left to the terminal library, a 256-colour terminal gets each cell's nearest palette
    colour, and a smooth blue or red turns into blotches of one wrong colour; spreading
    each cell's error onto its neighbours keeps the colour of a region right on average.
    """
    indices = np.asarray(image.convert("RGB").quantize(palette=_PALETTE_IMAGE, dither=Image.Dither.FLOYDSTEINBERG))
    return np.minimum(indices.astype(np.uint32), len(XTERM_PALETTE) - 1) + _FIRST_XTERM_INDEX


def _eight_bit_table(packed: np.ndarray) -> dict[int, Color]:
    for number in np.unique(packed).tolist():
        if number not in _EIGHT_BIT:
            _EIGHT_BIT[number] = Color(f"color({number})", ColorType.EIGHT_BIT, number=number)
    return _EIGHT_BIT


def cell_colours(image: Image.Image, depth: str = "truecolor") -> tuple[np.ndarray, np.ndarray]:
    """Each cell's upper and lower pixel, as 0xRRGGBB (or xterm colour numbers for depth "256")."""
    if depth == "256":
        packed = dither_to_xterm(image)
    else:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint32)
        packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    if packed.shape[0] % 2:
        packed = np.concatenate([packed, packed[-1:]], axis=0)
    return packed[0::2], packed[1::2]  # one cell row = two pixel rows


def _keep_close(kept: np.ndarray, new: np.ndarray, tolerance: int) -> np.ndarray:
    """`new` 0xRRGGBB colours, with `kept`'s wherever no channel moved by more than `tolerance`."""
    moved = np.zeros(new.shape, dtype=bool)
    for shift in (16, 8, 0):
        moved |= np.abs(((kept >> shift) & 255).astype(np.int16) - ((new >> shift) & 255).astype(np.int16)) > tolerance
    return np.where(moved, new, kept)


class PixelRows(list):
    """A picture's Strips, one per cell row, with the cell colours they were built from (so the pane can
    tell which cells changed, and by how much)."""

    def __init__(self, strips, upper: np.ndarray, lower: np.ndarray, depth: str) -> None:
        super().__init__(strips)
        self.upper, self.lower, self.depth = upper, lower, depth


class FastHalfcellRenderer(Renderer):
    """A rich-pixels Renderer: cached colours, one segment per run of equal cells."""

    def rows(self, image: Image.Image, depth: str = "truecolor") -> list[list[Segment]]:
        """The segments of each cell row (two pixel rows), without line breaks."""
        return self.rows_of_cells(*cell_colours(image, depth), depth)

    def rows_of_cells(self, upper: np.ndarray, lower: np.ndarray, depth: str = "truecolor") -> list[list[Segment]]:
        """The segments of each cell row, from its cells' upper and lower colours (see cell_colours)."""
        packed = np.stack([upper, lower])
        height, width = upper.shape
        # A segment starts at each row's first cell and wherever a cell differs from its
        # left neighbour; found for the whole image at once. Every row opens with a start,
        # so a run's length (the gap to the next start) never crosses into the next row.
        starts = np.ones((height, width), dtype=bool)
        starts[:, 1:] = (upper[:, 1:] != upper[:, :-1]) | (lower[:, 1:] != lower[:, :-1])
        row_of, column = np.nonzero(starts)
        flat = row_of * width + column
        lengths = np.diff(np.append(flat, height * width))
        colour = _eight_bit_table(packed) if depth == "256" else _colour_table(packed)
        from_color = Style.from_color
        segments = list(map(_new_segment, [
            (LOWER_HALF * length, from_color(colour[low], colour[up]), None)
            for length, up, low in zip(lengths.tolist(), upper.ravel()[flat].tolist(),
                                       lower.ravel()[flat].tolist())
        ]))
        bounds = np.searchsorted(row_of, np.arange(height + 1)).tolist()
        return [segments[bounds[y]:bounds[y + 1]] for y in range(height)]

    def render(self, image: Image.Image, resize: tuple[int, int] | None) -> list[Segment]:
        if resize and image.size != resize:
            image = image.resize(resize, Image.NEAREST)
        newline = Segment("\n")
        return [segment for row in self.rows(image) for segment in [*row, newline]]


_RENDERER = FastHalfcellRenderer()


def strips_for(image: Image.Image, size: tuple[int, int], depth: str = "truecolor", previous=None,
               tolerance: int = 0) -> PixelRows:
    """Terminal pixels for `image` resized to `size` pixels (render.fit_pixels): see render.render_strips.

    Where `previous` (PixelRows of the same size and depth) has a cell colour within `tolerance` of
    the new one in every channel, that colour is kept (truecolor only: palette numbers that are near
    are not near colours), and a row none of whose cells changed is `previous`'s own line."""
    # Upscaling stays crisp (nearest); shrinking averages (a 512 px image into 64 columns).
    method = Image.NEAREST if size[0] >= image.size[0] else Image.LANCZOS
    fitted = image if size == image.size else image.resize(size, method)
    upper, lower = cell_colours(fitted, depth)
    same_frame = (isinstance(previous, PixelRows) and previous.depth == depth
                  and previous.upper.shape == upper.shape and len(previous) == upper.shape[0])
    if not same_frame:
        rows = _RENDERER.rows_of_cells(upper, lower, depth)
        return PixelRows([Strip(row, size[0]) for row in rows], upper, lower, depth)
    if tolerance > 0 and depth != "256":
        upper, lower = _keep_close(previous.upper, upper, tolerance), _keep_close(previous.lower, lower, tolerance)
    # Rows whose every cell kept its colour keep their lines: in late steps most rows do, and building a
    # row's segments is the conversion's cost.
    changed = np.flatnonzero((upper != previous.upper).any(axis=1) | (lower != previous.lower).any(axis=1))
    strips = list(previous)
    for y, row in zip(changed.tolist(), _RENDERER.rows_of_cells(upper[changed], lower[changed], depth)):
        strips[y] = Strip(row, size[0])
    return PixelRows(strips, upper, lower, depth)

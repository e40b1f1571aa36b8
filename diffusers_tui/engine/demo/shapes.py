"""The demo models' world: coloured shapes on coloured backgrounds, drawn and read back.

One module holds both directions so they cannot drift apart: `draw_batch` renders
images from a `ShapeSpec` (training data, test fixtures) and `read_shape` recovers the
three attributes from any RGB image (the quality checker and the plausibility check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: Colour names and their RGB values; far apart so a blurry sample still maps back.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 40),
    "purple": (150, 50, 190),
    "white": (240, 240, 240),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")


@dataclass(frozen=True)
class ShapeSpec:
    """One picture: a foreground colour, a shape and a background colour."""

    colour: str
    shape: str
    background: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} on a {self.background} background"


def all_specs() -> list[ShapeSpec]:
    """Every caption the dataset can produce (foreground and background differ)."""
    return [
        ShapeSpec(c, s, b)
        for c in COLOURS
        for s in SHAPES
        for b in COLOURS
        if b != c
    ]


def caption_words() -> list[str]:
    """The words of every caption, for building the demo tokenizer's vocabulary."""
    words = {"a", "on", "background", *COLOURS, *SHAPES}
    return sorted(words)


def _palette_tensor(device: torch.device | str) -> torch.Tensor:
    return torch.tensor([PALETTE[c] for c in COLOURS], dtype=torch.float32, device=device) / 127.5 - 1


def draw_batch(
    specs: list[ShapeSpec] | None,
    n: int,
    size: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, list[ShapeSpec]]:
    """Draw `n` images in [-1, 1] (N, 3, size, size); random specs when `specs` is None.

    Position and size are jittered; edges are anti-aliased by 4x supersampling so the
    models learn smooth shapes, not staircase edges.
    """
    if specs is None:
        pool = all_specs()
        picks = torch.randint(len(pool), (n,), generator=generator, device="cpu")
        specs = [pool[int(i)] for i in picks]
    n = len(specs)
    fg_index = torch.tensor([COLOURS.index(s.colour) for s in specs], device=device)
    bg_index = torch.tensor([COLOURS.index(s.background) for s in specs], device=device)
    shape_index = torch.tensor([SHAPES.index(s.shape) for s in specs], device=device)
    jitter = torch.rand((n, 3), generator=generator, device="cpu").to(device)
    cx = 0.5 + (jitter[:, 0] - 0.5) * 0.3
    cy = 0.5 + (jitter[:, 1] - 0.5) * 0.3
    radius = 0.2 + jitter[:, 2] * 0.1

    fine = size * 4
    axis = (torch.arange(fine, device=device, dtype=torch.float32) + 0.5) / fine
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    dx = xs[None] - cx[:, None, None]
    dy = ys[None] - cy[:, None, None]
    r = radius[:, None, None]
    circle = dx**2 + dy**2 <= r**2
    # Squares and triangles get the same area as the circle so size alone says nothing.
    half_side = r * math.sqrt(math.pi) / 2
    square = (dx.abs() <= half_side) & (dy.abs() <= half_side)
    tri_height = r * math.sqrt(math.pi * math.sqrt(3)) * 0.77
    top = -tri_height * 2 / 3
    depth = (dy - top) / tri_height
    triangle = (depth >= 0) & (depth <= 1) & (dx.abs() <= depth * tri_height / math.sqrt(3))
    masks = torch.stack([circle, square, triangle], dim=1).float()
    mask = masks[torch.arange(n, device=device), shape_index]
    mask = torch.nn.functional.avg_pool2d(mask[:, None], 4)

    palette = _palette_tensor(device)
    fg = palette[fg_index][:, :, None, None]
    bg = palette[bg_index][:, :, None, None]
    return bg + (fg - bg) * mask, list(specs)


def to_pil(image: torch.Tensor):
    """A (3, H, W) tensor in [-1, 1] to a PIL image."""
    from PIL import Image

    array = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


@dataclass(frozen=True)
class ShapeReading:
    """What `read_shape` saw in an image, with how far it was from a clean drawing."""

    colour: str
    shape: str
    background: str
    fill_ratio: float
    area_fraction: float
    colour_error: float
    background_error: float
    largest_blob_fraction: float

    @property
    def plausible(self) -> bool:
        """True when the image looks like one the dataset could have drawn."""
        return (
            self.colour != self.background
            and self.colour_error < 60
            and self.background_error < 45
            and 0.04 <= self.area_fraction <= 0.5
            and self.largest_blob_fraction >= 0.9
            and 0.35 <= self.fill_ratio <= 1.05
        )


def _nearest_colour(rgb: np.ndarray) -> tuple[str, float]:
    values = np.array([PALETTE[c] for c in COLOURS], dtype=np.float32)
    distances = np.linalg.norm(values - rgb[None], axis=1)
    best = int(distances.argmin())
    return COLOURS[best], float(distances[best])


def read_shape(image) -> ShapeReading:
    """Read foreground colour, shape and background colour back from an RGB image.

    The background is the median of the border pixels; the foreground is every pixel
    far from it; the shape comes from how much of its bounding box the foreground
    fills (circle pi/4, square 1, triangle 1/2).
    """
    from scipy import ndimage

    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width, _ = pixels.shape
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    bg_rgb = np.median(border, axis=0)
    background, background_error = _nearest_colour(bg_rgb)
    distance = np.linalg.norm(pixels - bg_rgb[None, None], axis=2)
    mask = distance > 60
    area_fraction = float(mask.mean())
    if mask.sum() < 4:
        return ShapeReading(background, "none", background, 0.0, area_fraction, 999.0,
                            background_error, 0.0)
    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    largest = int(sizes.argmax()) + 1
    blob = labels == largest
    largest_blob_fraction = float(sizes.max() / mask.sum())
    colour, colour_error = _nearest_colour(np.median(pixels[blob], axis=0))
    rows = np.flatnonzero(blob.any(axis=1))
    cols = np.flatnonzero(blob.any(axis=0))
    box_area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
    fill_ratio = float(blob.sum() / box_area)
    if fill_ratio >= 0.88:
        shape = "square"
    elif fill_ratio >= 0.64:
        shape = "circle"
    else:
        shape = "triangle"
    return ShapeReading(colour, shape, background, fill_ratio, area_fraction, colour_error,
                        background_error, largest_blob_fraction)

"""Recorded steps for tests of saving and export: pixel-space records, decoded as a pixel model decodes them."""

import torch

from diffusers_tui.engine.preview.decoders import Decoders
from diffusers_tui.engine.preview.record import StepLatents
from diffusers_tui.engine.request import StepSnapshot

PIXELS = Decoders(family="pixel", device=torch.device("cpu"))


def recorded_step(step: int, total: int, side: int = 4, red: int = 0, **fields) -> StepSnapshot:
    """A StepSnapshot whose record is a `side`-pixel square of one colour (red 0-255)."""
    picture = torch.full((3, side, side), -1.0)
    picture[0] = red / 127.5 - 1
    fields = {"timestep": 0.0, "sigma": None, "elapsed_s": 0.0, **fields}
    return StepSnapshot(step=step, total=total, latents=StepLatents(None, picture, PIXELS), **fields)

"""The record of a run: each step's denoised estimate and noisy sample, kept as latents.

Latents are small (4 KB a step for the demo, 32 KB for SD 1.5 at 512 px), so a run keeps
every step and decodes pixels only for what someone looks at. On CUDA each step is copied
into one pinned CPU buffer allocated per run, without blocking: the step loop never waits
for the copy, and whoever reads a step waits for that step's copy alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True, eq=False)
class StepLatents:
    """One step's latents on the CPU: the denoised estimate (None when unknown) and the noisy sample."""

    x0: torch.Tensor | None
    noisy: torch.Tensor
    #: Turns these latents into pictures (the model's Decoders); not a part of the record itself.
    decoders: Any
    #: A CUDA event recorded after the copies were queued; None on the CPU.
    copied: Any = None

    def of(self, kind: str) -> torch.Tensor:
        """The (C, h, w) latent of `kind` ("x0" or "noisy"), once its copy has landed."""
        if self.copied is not None:
            self.copied.synchronize()  # waits for this step's copy only, in the reader's thread
        return self.x0 if kind == "x0" and self.x0 is not None else self.noisy

    def landed(self) -> bool:
        """True once the copies are done (never waits)."""
        return self.copied is None or self.copied.query()


class LatentRecorder:
    """Copies each step's latents off the device into one buffer per run."""

    def __init__(self, decoders, steps: int):
        self.decoders = decoders
        self.steps = steps
        self._buffer: torch.Tensor | None = None
        self._used = 0

    def record(self, x0: torch.Tensor | None, noisy: torch.Tensor) -> StepLatents:
        """Keep a step's latents (a batch's laid out as one grid, as its picture is); returns the step's record
        without waiting."""
        noisy = tiled(noisy.detach())
        x0 = tiled(x0.detach()) if x0 is not None else None
        if noisy.device.type != "cuda":
            return StepLatents(x0.float().clone() if x0 is not None else None, noisy.float().clone(), self.decoders)
        if self._buffer is None or self._used + 2 > len(self._buffer):
            # One pinned allocation per run: a pinned allocation per step can stall the device.
            self._buffer = torch.empty((2 * self.steps, *noisy.shape), dtype=noisy.dtype, pin_memory=True)
            self._used = 0
        noisy_slot, x0_slot = self._buffer[self._used], self._buffer[self._used + 1]
        self._used += 2
        noisy_slot.copy_(noisy, non_blocking=True)
        if x0 is not None:
            x0_slot.copy_(x0, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return StepLatents(x0_slot if x0 is not None else None, noisy_slot, self.decoders, event)


def tiled(batch: torch.Tensor) -> torch.Tensor:
    """A batch of latents (n, C, h, w) as one (C, rows·h, columns·w) latent, in rows of ceil(√n) (the batch's grid;
    empty places are zeros); a batch of one is its latent."""
    if batch.shape[0] == 1:
        return batch[0]
    count, channels, height, width = batch.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    sheet = batch.new_zeros((channels, rows * height, columns * width))
    for index in range(count):
        row, column = divmod(index, columns)
        sheet[:, row * height:(row + 1) * height, column * width:(column + 1) * width] = batch[index]
    return sheet

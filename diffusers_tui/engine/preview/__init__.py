"""Previews: latents are the record (record), pixels a view made on demand (decoders), live (live).

A run records each due step's latents; the live pane, the scrubber, saved snapshots and
exports each decode what they show, by the method they need: see decoders.
"""

from __future__ import annotations

import dataclasses


def with_last_preview(result, frames, method: str | None = None):
    """`result` with its last recorded frame decoded, when it has no image to show instead."""
    if result.image is not None or not frames:
        return result
    record = frames[-1].latents
    return dataclasses.replace(result, last_preview=record.decoders.image(record, frames[-1].preview_kind, method))


def full_picture(snapshot):
    """A recorded step at full resolution: the model's full decode (or its pixels) of the chosen latent."""
    record = snapshot.latents
    return record.decoders.full(record, snapshot.preview_kind)


def finite_frames(frames):
    """The frames before the first whose sample is not finite (NaN found late on a device)."""
    import torch

    kept = []
    for frame in frames:
        if not bool(torch.isfinite(frame.latents.of("noisy")).all()):
            break
        kept.append(frame)
    return kept

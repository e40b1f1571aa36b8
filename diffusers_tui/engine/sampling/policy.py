"""When a run makes a preview and looks for NaN, and what a hand-stepped loop previews."""

from __future__ import annotations

import torch

from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.sampling.estimates import estimate_x0


def not_finite_message(where: str, dtype) -> str:
    advice = (" In float16 this is usually an overflow: try --dtype float32 or bfloat16."
              if dtype == torch.float16 else "")
    return f"the {where} became NaN or infinite: the run was stopped and its last good preview kept.{advice}"


def is_finite(tensor: torch.Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())

#: Without previews, NaN is looked for every this many model calls (and at the last):
#: reading the answer waits for the GPU, which a preview does anyway.
NAN_CHECK_EVERY = 10


def nan_check_due(calls: int, total: int, request: GenerationRequest) -> bool:
    return preview_due(calls, total, request) or calls % NAN_CHECK_EVERY == 0 or calls == total


def preview_due(calls: int, total: int, request: GenerationRequest) -> bool:
    if request.preview_method == "none":
        return False
    return calls % request.preview_every == 0 or calls == total


def preview_source(request: GenerationRequest, scheduler, output, model_output, sample, timestep, sigma):
    """What a hand-stepped loop previews: the noisy sample, or the scheduler's x0 estimate."""
    if request.preview == "noisy":
        return sample
    shown = getattr(output, "pred_original_sample", None)
    if shown is None:
        shown = estimate_x0(scheduler, model_output, sample, timestep, sigma)
    return shown

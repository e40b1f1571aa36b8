"""When a run records a step and looks for NaN, and what a hand-stepped loop records."""

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


class NanWatch:
    """Looks for NaN in a run without making the step loop wait for the device.

    A recorded step is checked on its CPU copy once that copy has landed (at once on a
    CPU; a step or two later on CUDA; the last call waits for all). Unrecorded steps are
    checked on the device every NAN_CHECK_EVERY calls and at the last.
    """

    def __init__(self):
        self._waiting: list = []
        #: The model call whose sample was found not finite.
        self.bad_call: int | None = None

    def finite(self, calls: int, total: int, record, latents: torch.Tensor) -> bool:
        if record is None:
            if calls % NAN_CHECK_EVERY and calls != total:
                return True
            if not is_finite(latents):
                self.bad_call = calls
                return False
            return True
        self._waiting.append((calls, record))
        last = calls == total
        while self._waiting and (last or self._waiting[0][1].landed()):
            call, landed = self._waiting.pop(0)
            if not is_finite(landed.of("noisy")):
                self.bad_call = call
                return False
        return True


def preview_due(calls: int, total: int, request: GenerationRequest) -> bool:
    if request.preview_method == "none":
        return False
    return calls % request.preview_every == 0 or calls == total


def denoised_estimate(scheduler, output, model_output, sample, timestep, sigma):
    """The x0 estimate a hand-stepped loop records beside the sample (None when it has none)."""
    shown = getattr(output, "pred_original_sample", None)
    if shown is None:
        shown = estimate_x0(scheduler, model_output, sample, timestep, sigma)
    return shown

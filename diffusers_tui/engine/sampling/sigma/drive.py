"""Running a sampler generator against a plain denoiser D(x, σ), for tests and benchmarks."""

from __future__ import annotations

from typing import Callable

import torch

from .context import Sampler, SamplerContext

#: D(x, σ): the denoised estimate (x0) of x at noise level σ.
Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def run_with(model_fn: Denoiser, sampler: Sampler, x: torch.Tensor, sigmas: list[float],
             context: SamplerContext) -> torch.Tensor:
    """Answer each of the sampler's yields with model_fn(x, σ) and return its final sample."""
    run = sampler(x, sigmas, context)
    try:
        x_eval, sigma = next(run)
        while True:
            x_eval, sigma = run.send(model_fn(x_eval, sigma))
    except StopIteration as finished:
        return finished.value

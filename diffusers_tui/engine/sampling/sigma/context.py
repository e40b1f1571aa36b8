"""What a sampler is handed besides x and σ: its noise, its options, and the model's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator

import torch

#: A sampler: `sampler(x, sigmas, context)` yields (x, σ) for each model call, is sent D(x, σ), returns x.
SamplerRun = Generator[tuple[torch.Tensor, float], torch.Tensor, torch.Tensor]
Sampler = Callable[[torch.Tensor, list[float], "SamplerContext"], SamplerRun]


@dataclass
class SamplerContext:
    """One run's sampler options and sources. Samplers read it; only the bridge writes it."""

    #: Fresh Gaussian noise shaped like x, for ancestral steps: `noise(sigma, sigma_next)`.
    #: SDE samplers get Brownian-tree increments from the same call (see noise.py).
    noise: Callable[[float, float], torch.Tensor]
    #: Ancestral/SDE strength (k-diffusion's eta) and noise scale (s_noise).
    eta: float = 1.0
    s_noise: float = 1.0
    #: Whether the model is flow-matching (x = (1-σ) x0 + σ ε): some samplers have a flow form.
    flow: bool = False
    #: The unconditional prediction D_uncond(x, σ) of the latest model call, for the CFG++
    #: samplers; None where the bridge cannot see it (then CFG++ samplers refuse to run).
    uncond_denoised: torch.Tensor | None = None
    #: The model's σ range (DPM fast and adaptive take it whatever the schedule).
    sigma_min: float = 0.0
    sigma_max: float = 0.0
    #: Extra per-sampler options (s_churn, rtol, order, ...), by k-diffusion's names.
    options: dict[str, Any] = field(default_factory=dict)

"""The noise level and the denoised estimate (x0) of a sample, from a scheduler's own state."""

from __future__ import annotations

import math

import torch

from diffusers_tui.engine.sampling.registry import is_flow_scheduler


def current_sigma(scheduler, timestep, step: int | None = None, *, flow: bool | None = None,
                  sigma_values: list[float] | None = None) -> float | None:
    """The noise level of the sample the scheduler is about to step, if it has one.

    `step` is how many steps it has taken: flow-matching pipelines do not all keep the
    scheduler's own step index (Flux sets its begin index), so the caller's count is used.
    A step loop passes `flow` and the run's σ values (read once, and only where σ is the
    sample's noise level: see sigma_list), so no step re-reads them.
    """
    flow = is_flow_scheduler(scheduler) if flow is None else flow
    index = getattr(scheduler, "step_index", None)
    if flow:
        index = step if step is not None else (index or 0)
    if sigma_values is not None:
        if index is not None and index < len(sigma_values):
            return sigma_values[index]
    else:
        sigmas = getattr(scheduler, "sigmas", None)
        if sigmas is not None and index is not None and index < len(sigmas) and (
                flow or getattr(scheduler, "init_noise_sigma", 1.0) > 1):
            return float(sigmas[index])
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        return None
    alpha = float(alphas[min(max(int(round(float(timestep))), 0), len(alphas) - 1)])
    return math.sqrt((1 - alpha) / alpha)


def sigma_list(scheduler, flow: bool) -> list[float] | None:
    """A run's σ values on the CPU, where σ is the sample's noise level (flow, or Karras-style samples)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if not torch.is_tensor(sigmas) or not (flow or getattr(scheduler, "init_noise_sigma", 1.0) > 1):
        return None
    return [float(s) for s in sigmas.cpu()]


def estimate_x0(scheduler, model_output: torch.Tensor, sample: torch.Tensor, timestep, sigma: float | None):
    """The denoised estimate from one model output, for schedulers that do not report it."""
    prediction = scheduler.config.get("prediction_type", "epsilon")
    model_output = model_output.float()
    sample = sample.float()
    if is_flow_scheduler(scheduler):
        return None if sigma is None else sample - sigma * model_output  # x_t = x0 + σ (noise - x0) = x0 + σ v
    if prediction == "sample":
        return model_output
    if scheduler.init_noise_sigma > 1 and sigma is not None:
        # Karras-style schedulers keep the sample at x0 + sigma * noise.
        if prediction == "v_prediction":
            return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
        return sample - sigma * model_output
    alphas = scheduler.alphas_cumprod
    alpha = float(alphas[min(max(int(round(float(timestep))), 0), len(alphas) - 1)])
    if prediction == "v_prediction":
        return alpha**0.5 * sample - (1 - alpha) ** 0.5 * model_output
    return (sample - (1 - alpha) ** 0.5 * model_output) / alpha**0.5

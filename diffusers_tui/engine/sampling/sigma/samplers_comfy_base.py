"""What ComfyUI's own samplers share: half-log-SNR time, ancestral steps, and the model facts they read."""

from __future__ import annotations

import math

import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.model_sigmas import time_snr_shift
from diffusers_tui.engine.sampling.sigma.sampler_math import (  # noqa: F401 - shared with the k-diffusion samplers
    alpha_of, ancestral_step, flow_ancestral_step, half_log_snr, sigma_of_half_log_snr)


# ----- time in half-log-SNR λ = log(α/σ), ComfyUI's sigma_to_half_log_snr and its inverse -----







def ve_sigma(sigma: float, alpha: float) -> float:
    """σ/α, the noise level in the model's variance-exploding coordinates (infinite where α = 0)."""
    return math.inf if alpha == 0 else sigma / alpha


def lerp(start: float, end: float, weight: float) -> float:
    return start + weight * (end - start)


def expm1_ratio(h: float) -> float:
    """h·φ₂(h) = (e^h - 1 - h)/h, ComfyUI's ei_h_phi_2."""
    return (math.expm1(h) - h) / h


# ----- the ancestral split of a step -----





# ----- the model facts ComfyUI reads from model_sampling -----

def percent_to_sigma(context: SamplerContext, percent: float, sigmas: list[float] | None = None) -> float:
    """model_sampling.percent_to_sigma: the σ a given fraction of the way into sampling.

    Exact where the bridge says how: options["percent_to_sigma"] (a callable), or options["model_sigmas"]
    (a ModelSigmas: σ of timestep (1-p)·999 on ε/v models, of flow time 1-p on flow models). Else, on
    flow models, SD3's time_snr_shift(options["shift"] (1), 1-p), as samplers_sde reads it; on ε/v
    models log-linear between σ_min and σ_max (ComfyUI's EDM rule; close to, not, the discrete one)."""
    rule = context.options.get("percent_to_sigma")
    if rule is not None:
        return float(rule(percent))
    if percent <= 0.0:
        return 1.0 if context.flow else 999999999.9
    if percent >= 1.0:
        return 0.0
    model = context.options.get("model_sigmas")
    if model is not None:
        span = model.multiplier if model.flow else len(model.sigmas) - 1
        return float(model.sigma((1.0 - percent) * span))
    if context.flow:
        return float(time_snr_shift(float(context.options.get("shift", 1.0)), 1.0 - percent))
    low, high = _sigma_range(context, sigmas)
    return math.exp(math.log(low) + (1.0 - percent) * (math.log(high) - math.log(low)))


def _sigma_range(context: SamplerContext, sigmas: list[float] | None) -> tuple[float, float]:
    if context.sigma_min > 0 and context.sigma_max > 0:
        return context.sigma_min, context.sigma_max
    positive = [s for s in sigmas or () if s > 0] or [1.0]
    return min(positive), max(positive)


def offset_first_sigma(sigmas: list[float], context: SamplerContext) -> list[float]:
    """ComfyUI's offset_first_sigma_for_snr: on a flow model a first σ of 1 (λ = -∞) becomes the σ
    at 0.01 % of sampling, so the log-SNR samplers start from a finite λ (the model is called there).
    options["first_sigma_offset"] names that σ outright (as samplers_sde reads it)."""
    if len(sigmas) <= 1 or not context.flow or sigmas[0] < 1:
        return list(sigmas)
    offset = context.options.get("first_sigma_offset")
    first = float(offset) if offset is not None else percent_to_sigma(context, 1e-4, sigmas)
    return [first] + list(sigmas[1:])


def noise_scaled(context: SamplerContext, s_noise: float) -> float:
    """s_noise times model_sampling.noise_scale (options["noise_scale"], 1 unless a model sets it)."""
    return s_noise * float(context.options.get("noise_scale", 1.0))


def option(context: SamplerContext, name: str, default):
    return context.options.get(name, default)


def noise_scaling(sigma: float, noise: torch.Tensor, latent: torch.Tensor, flow: bool) -> torch.Tensor:
    """model_sampling.noise_scaling: a latent brought to σ (σ·ε + (1-σ)·x on flow models, else σ·ε + x)."""
    if flow:
        return sigma * noise + (1.0 - sigma) * latent
    return sigma * noise + latent


def uncond_of(context: SamplerContext, sampler: str) -> torch.Tensor:
    """The unconditional prediction of the model call just answered (CFG++ samplers read it after each yield)."""
    uncond = context.uncond_denoised
    if uncond is None:
        raise ValueError(f"{sampler} is a CFG++ sampler: it needs the unconditional prediction of each model call "
                         "(context.uncond_denoised), and the caller did not provide it")
    return uncond

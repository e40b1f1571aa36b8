"""A1111's own samplers beside k-diffusion's: DDIM, DDIM CFG++, PLMS and UniPC on its timesteps, and LCM.

Written from A1111 1.10's modules/sd_samplers_timesteps.py and sd_samplers_timesteps_impl.py, its
UniPC (modules/models/diffusion/uni_pc, with the UniPC options' defaults: bh1, time_uniform, order 3,
lower order final) and modules/sd_samplers_lcm.py.

A1111 steps DDIM, PLMS and UniPC in variance-preserving space, x_t = √ᾱ x0 + √(1-ᾱ) ε, with ε from
the model at timestep t. Every such step is linear in x, and dividing x by √ᾱ turns it into σ space
(σ = √((1-ᾱ)/ᾱ)), where DDIM is exactly Euler; so the same steps are taken here on the σ of those
timesteps. Two things follow from A1111's loop and are kept: these samplers start from unit noise
(√(1+σ²) in σ space), and they stop on t = 1 (UniPC: t = 0), not at σ = 0: A1111 decodes that last x
as it is, so it is returned in A1111's scale, x / √(1+σ²). A1111 ignores the schedule type for them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas
from diffusers_tui.engine.sampling.sigma.samplers_multistep import ADAMS_BASHFORTH
from diffusers_tui.engine.sampling.sigma.samplers_uni_pc import uni_pc_steps

#: DDIM CFG++ guides at the CFG scale divided by this (A1111: cond_scale_miltiplier = 1 / 12.5).
CFGPP_SCALE_DIVISOR = 12.5
#: A1111's LCM keeps every 20th σ of the model's (its 50 "original" timesteps: t = 19, 39 ... 999).
LCM_STRIDE = 20
#: LCM's boundary condition (c_skip, c_out), as A1111 computes it: σ_data and the timestep scaling.
LCM_SIGMA_DATA, LCM_TIMESTEP_SCALING = 0.5, 10.0


# ----- schedules: the σ lists these samplers always run on -----


def a1111_timestep_sigmas(model: ModelSigmas, steps: int) -> list[float]:
    """σ of A1111's CompVis timesteps, top first: t = 1, 1 + s, 1 + 2s ... (s = 1000 // steps), and no
    trailing 0. 20 steps give t = 951 ... 1: DDIM makes 19 model calls on them, as A1111's does."""
    return [float(model.sigmas[t]) for t in reversed(a1111_timesteps(len(model.sigmas), steps))]


def a1111_timesteps(count: int, steps: int) -> list[int]:
    """A1111's CompVis timesteps for `steps` on a `count`-timestep model, rising: 1, 1 + s, 1 + 2s ..."""
    stride = max(count // steps, 1)
    return [min(t + 1, count - 1) for t in range(0, count, stride)]


def a1111_unipc_sigmas(model: ModelSigmas, steps: int) -> list[float]:
    """UniPC's time-uniform steps from t = 1 to 1/N (its NoiseScheduleVP, discrete): steps + 1 times,
    log α interpolated linearly between training timesteps; as σ, top first, ending on σ(t=0)."""
    count = len(model.sigmas)
    positions = np.linspace(1.0, 1.0 / count, steps + 1) * count - 1
    log_alphas = np.interp(positions, np.arange(count), _log_alphas(model))
    return np.sqrt(np.expm1(-2 * log_alphas)).tolist()


def a1111_unipc_timestep(model: ModelSigmas, sigma: float) -> float:
    """The model input time A1111's UniPC gives the network for σ: (t - 1/N)·1000, t where its
    interpolated log α has this σ (NoiseScheduleVP.inverse_lambda)."""
    log_alphas = _log_alphas(model)  # decreasing with t: np.interp wants it rising
    target = -0.5 * math.log1p(float(sigma) ** 2)
    return float(np.interp(target, log_alphas[::-1], np.arange(len(log_alphas))[::-1]))


def nearest_timestep(model: ModelSigmas, sigma: float) -> float:
    """The training timestep whose σ this is (DDIM and PLMS call the model on whole timesteps)."""
    return float(round(model.timestep(sigma)))


def lcm_table(model: ModelSigmas) -> ModelSigmas:
    """The σ table A1111's LCM reads: every 20th of the model's (t = 19, 39 ... 999)."""
    return ModelSigmas(model.sigmas[LCM_STRIDE - 1 :: LCM_STRIDE].clone())


def lcm_timestep(table: ModelSigmas, sigma: float) -> float:
    """The model's timestep for σ under A1111's LCM: the nearest of its 50 by log σ, as 20k + 19."""
    return table.timestep(sigma, nearest=True) * LCM_STRIDE + (LCM_STRIDE - 1)


# ----- the samplers -----


def ddim(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """DDIM (eta: A1111's "Eta DDIM", 0 by default): Euler in σ space at eta 0."""
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        eps = (x - denoised) / sigma
        x = _ddim_step(denoised, eps, sigma, sigma_next, context)
    return to_a1111_scale(x, sigmas[-1])


def ddim_cfgpp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """DDIM CFG++: the estimate guided at CFG / 12.5, and the step's direction the unconditional ε."""
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        guided = yield x, sigma
        uncond = context.uncond_denoised
        # Guidance is linear in the estimates: g/12.5 is the unconditional plus a 12.5th of the guided step.
        denoised = uncond + (guided - uncond) / CFGPP_SCALE_DIVISOR
        x = _ddim_step(denoised, (x - uncond) / sigma, sigma, sigma_next, context)
    return to_a1111_scale(x, sigmas[-1])


def _ddim_step(denoised, eps, sigma: float, sigma_next: float, context: SamplerContext) -> torch.Tensor:
    """x at σ_next from the estimate and the direction ε: DDIM's update divided by √ᾱ_prev, with its
    noise σ_t = eta·√((1-ᾱ_prev)/(1-ᾱ)·(1-ᾱ/ᾱ_prev))."""
    alpha, alpha_prev = 1 / (1 + sigma**2), 1 / (1 + sigma_next**2)
    noise_std = context.eta * math.sqrt((1 - alpha_prev) / (1 - alpha) * (1 - alpha / alpha_prev))
    x = denoised + math.sqrt(max(1 - alpha_prev - noise_std**2, 0.0) / alpha_prev) * eps
    if noise_std > 0:
        x = x + noise_std / math.sqrt(alpha_prev) * context.noise(sigma, sigma_next)
    return x


def plms(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """PLMS: pseudo improved Euler first (two model calls), then Adams-Bashforth on ε up to 4th order."""
    history: list[torch.Tensor] = []  # newest ε first
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        slopes = [(x - denoised) / sigma] + history
        if not history:
            ahead = x + (sigma_next - sigma) * slopes[0]
            direction = (slopes[0] + (ahead - (yield ahead, sigma_next)) / sigma_next) / 2
        else:
            direction = sum(w * e for w, e in zip(ADAMS_BASHFORTH[len(slopes)], slopes))
        x = x + (sigma_next - sigma) * direction
        history = slopes[:3]
    return to_a1111_scale(x, sigmas[-1])


def unipc(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """UniPC as A1111 runs it: bh1, order 3 (lowered below 4 steps), lower order on the last steps."""
    x = yield from uni_pc_steps(x, sigmas, "bh1")
    return to_a1111_scale(x, sigmas[-1])


def lcm(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """LCM: jump to the consistency estimate c_out·D + c_skip·x, then renoise to the next σ."""
    table = context.options["model_sigmas"]
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        scaled = lcm_timestep(table, sigma) * LCM_TIMESTEP_SCALING
        c_skip = LCM_SIGMA_DATA**2 / (scaled**2 + LCM_SIGMA_DATA**2)
        c_out = scaled / (scaled**2 + LCM_SIGMA_DATA**2) ** 0.5
        x = c_out * denoised + c_skip * x
        if sigma_next > 0:
            x = x + sigma_next * context.noise(sigma, sigma_next)
    return x


def to_a1111_scale(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x at σ in σ space, as A1111's variance-preserving loop holds it (√ᾱ x)."""
    return x / math.sqrt(1 + sigma**2)


def _log_alphas(model: ModelSigmas) -> np.ndarray:
    """log α per training timestep in UniPC's sense (half log ᾱ): -½ log(1 + σ²)."""
    return -0.5 * np.log1p(model.sigmas.double().numpy() ** 2)

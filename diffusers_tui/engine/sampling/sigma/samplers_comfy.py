"""ComfyUI's single-step and SDE samplers (ddpm, lcm, heunpp2, er_sde, SEEDS, exp-Heun), and its sampler ids.

Written from ComfyUI's comfy/k_diffusion/sampling.py. Every sampler is a generator in the protocol of
context.py: `denoised = yield (x, σ)` per model call. ComfyUI reads model_sampling where these read the
context: `context.flow` for CONST (flow) models, options["noise_scale"] for model_sampling.noise_scale,
and for percent_to_sigma options["percent_to_sigma"], ["model_sigmas"], ["shift"] or, for the first σ
of a flow run only, ["first_sigma_offset"] (see samplers_comfy_base). The multistep, CFG++, SA-Solver
and UniPC samplers live in their own modules; catalogue.COMFYUI_SAMPLERS names them all.
"""

from __future__ import annotations

import math

import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.samplers_comfy_base import (
    alpha_of, expm1_ratio, half_log_snr, lerp, noise_scaled, noise_scaling, offset_first_sigma, option,
    sigma_of_half_log_snr)


def ddpm(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """ComfyUI's DDPM: the ancestral DDPM posterior step, taken in variance-preserving coordinates.

    No flow form (ComfyUI converts by √(1+σ²) whatever the model); no eta or s_noise."""
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        eps = (x - denoised) / sigma
        x = _ddpm_posterior(x / math.sqrt(1.0 + sigma**2), sigma, sigma_next, eps, context)
        if sigma_next != 0:
            x = x * math.sqrt(1.0 + sigma_next**2)
    return x


def _ddpm_posterior(x_vp: torch.Tensor, sigma: float, sigma_next: float, eps: torch.Tensor, context) -> torch.Tensor:
    """The posterior mean from ᾱ(σ) = 1/(1+σ²) to ᾱ(σ_next), plus its standard deviation times fresh noise."""
    abar, abar_next = 1.0 / (sigma**2 + 1), 1.0 / (sigma_next**2 + 1)
    alpha = abar / abar_next
    mean = math.sqrt(1.0 / alpha) * (x_vp - (1 - alpha) * eps / math.sqrt(1 - abar))
    if sigma_next > 0:
        std = math.sqrt((1 - alpha) * (1.0 - abar_next) / (1.0 - abar))
        mean = mean + std * context.noise(sigma, sigma_next)
    return mean


def lcm(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Latent Consistency sampling: jump to the denoised estimate, then renoise it to the next σ.

    Flow form: renoising is model_sampling.noise_scaling (σ·ε + (1-σ)·x on flow models). Options, as
    ComfyUI's newest lcm: s_noise_end (s_noise ramps linearly to it), noise_clip_std (clamp ε to ±N std)."""
    steps = max(1, len(sigmas) - 1)
    s_start = float(context.s_noise)
    s_noise_end = option(context, "s_noise_end", None)
    s_end = s_start if s_noise_end is None else float(s_noise_end)
    clip_std = float(option(context, "noise_clip_std", 0.0))
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        x = yield x, sigma
        if sigma_next > 0:
            noise = context.noise(sigma, sigma_next)
            if clip_std > 0:
                limit = float(clip_std * noise.std())
                noise = noise.clamp(min=-limit, max=limit)
            s_noise = lerp(s_start, s_end, i / (steps - 1) if steps > 1 else 0.0)
            if s_noise != 1.0:
                noise = noise * s_noise
            x = noise_scaling(sigma_next, noise, x, context.flow)
    return x


def heunpp2(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Heun++ (Carzit's sd-webui-samplers-scheduler): Euler, Heun or a three-point average per step.

    The slopes at σ_i, σ_i+1 and σ_i+2 are weighted by σ/(3σ_0); the last two steps fall back to Heun
    and Euler, so a step costs 3, 2 (second to last) or 1 (last) model calls. Options s_churn, s_tmin,
    s_tmax as k-diffusion's Heun. No flow form (the Karras ODE is the flow ODE too)."""
    s_churn = float(option(context, "s_churn", 0.0))
    s_tmin, s_tmax = float(option(context, "s_tmin", 0.0)), float(option(context, "s_tmax", math.inf))
    s_end = sigmas[-1]
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        gamma = min(s_churn / (len(sigmas) - 1), 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            # ComfyUI draws this ε from the global generator at every step; here only when churning.
            eps = context.noise(sigma, sigma_next) * context.s_noise
            x = x + eps * (sigma_hat**2 - sigma**2) ** 0.5
        denoised = yield x, sigma_hat
        slope = (x - denoised) / sigma_hat
        dt = sigma_next - sigma_hat
        if sigma_next == s_end:
            x = x + slope * dt
            continue
        x_2 = x + slope * dt
        slope_2 = (x_2 - (yield x_2, sigma_next)) / sigma_next
        if sigmas[i + 2] == s_end:
            weight_2 = sigma_next / (2 * sigmas[0])
            x = x + ((1 - weight_2) * slope + weight_2 * slope_2) * dt
            continue
        sigma_after = sigmas[i + 2]
        x_3 = x_2 + slope_2 * (sigma_after - sigma_next)
        slope_3 = (x_3 - (yield x_3, sigma_after)) / sigma_after
        weight_2, weight_3 = sigma_next / (3 * sigmas[0]), sigma_after / (3 * sigmas[0])
        x = x + ((1 - weight_2 - weight_3) * slope + weight_2 * slope_2 + weight_3 * slope_3) * dt
    return x


def er_sde(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Extended Reverse-time SDE solver (ER-SDE-Solver-3, arXiv 2309.06169), in ER time λ_er = σ/α.

    Options: max_stage (1..3, default 3), noise_scaler (a function of λ_er; default x·(e^(x^0.3) + 10);
    ComfyUI's SamplerER_SDE "ODE" is noise_scaler x ↦ x with s_noise 0). s_noise times noise_scale.
    Flow form through λ (α = 1 - σ). Noise: plain Gaussian per step, not Brownian."""
    max_stage = int(option(context, "max_stage", 3))
    scaler = option(context, "noise_scaler", None) or _er_sde_default_scaler
    s_noise = noise_scaled(context, context.s_noise)
    sigmas = offset_first_sigma(sigmas, context)
    er_lambdas = [math.exp(-half_log_snr(s, context.flow)) for s in sigmas]  # σ/α; 0 at σ = 0
    points = torch.arange(0, 200, dtype=torch.float64)
    old_denoised = old_slope = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = yield x, sigma
        if sigma_next == 0:
            x = denoised
        else:
            lam_s, lam_t = er_lambdas[i], er_lambdas[i + 1]
            alpha_s, alpha_t = sigma / lam_s, sigma_next / lam_t
            r = _scale(scaler, lam_t) / _scale(scaler, lam_s)
            x = (alpha_t / alpha_s) * r * x + alpha_t * (1 - r) * denoised
            stage = min(max_stage, i + 1)
            if stage >= 2:
                dt = lam_t - lam_s
                step = -dt / 200.0
                positions = lam_t + points * step
                scaled = scaler(positions)
                slope = (denoised - old_denoised) / (lam_s - er_lambdas[i - 1])
                integral_1 = float(torch.sum(1 / scaled)) * step
                x = x + alpha_t * (dt + integral_1 * _scale(scaler, lam_t)) * slope
                if stage >= 3:
                    integral_2 = float(torch.sum((positions - lam_s) / scaled)) * step
                    curvature = (slope - old_slope) / ((lam_s - er_lambdas[i - 2]) / 2)
                    x = x + alpha_t * (dt**2 / 2 + integral_2 * _scale(scaler, lam_t)) * curvature
                old_slope = slope
            if s_noise > 0:
                spread = math.sqrt(max(lam_t**2 - lam_s**2 * r**2, 0.0))  # ComfyUI: NaN to 0
                x = x + alpha_t * context.noise(sigma, sigma_next) * s_noise * spread
        old_denoised = denoised
    return x


def _er_sde_default_scaler(x):
    return x * ((x**0.3).exp() + 10.0)


def _scale(scaler, value: float) -> float:
    return float(scaler(torch.tensor(value, dtype=torch.float64)))


def seeds_2(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """SEEDS-2 (arXiv 2305.14267): stochastic exponential 2-stage solver in data prediction and λ time.

    Options: r (stage point, default 0.5), solver_type "phi_1" (default) or "phi_2". eta (default 1)
    and s_noise (times noise_scale). Flow form through λ. Noise: plain Gaussian per sub-step."""
    return (yield from _seeds_2(x, sigmas, context, context.eta, context.s_noise,
                                float(option(context, "r", 0.5)), option(context, "solver_type", "phi_1")))


def exp_heun_2_x0(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Deterministic exponential Heun (2nd order) in data prediction and λ time: SEEDS-2, r = 1, φ₂, no noise."""
    return (yield from _seeds_2(x, sigmas, context, 0.0, 0.0, 1.0, option(context, "solver_type", "phi_2")))


def exp_heun_2_x0_sde(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Stochastic exponential Heun: SEEDS-2 with r = 1 and φ₂, eta and s_noise as given (default 1)."""
    return (yield from _seeds_2(x, sigmas, context, context.eta, context.s_noise, 1.0,
                                option(context, "solver_type", "phi_2")))


def _seeds_2(x, sigmas, context, eta: float, s_noise: float, r: float, solver_type: str):
    if solver_type not in ("phi_1", "phi_2"):
        raise ValueError("solver_type must be 'phi_1' or 'phi_2'")
    flow = context.flow
    s_noise = noise_scaled(context, s_noise)
    inject = eta > 0 and s_noise > 0
    sigmas = offset_first_sigma(sigmas, context)
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        if sigma_next == 0:
            x = denoised
            continue
        lam_s, lam_t = half_log_snr(sigma, flow), half_log_snr(sigma_next, flow)
        h = lam_t - lam_s
        h_eta = h * (eta + 1)
        sigma_1 = sigma_of_half_log_snr(lerp(lam_s, lam_t, r), flow)
        # Stage 1: an exponential Euler step to λ_s + r·h.
        x_2 = _decayed(x, sigma, sigma_1, r * h * eta) - alpha_of(sigma_1, flow) * math.expm1(-r * h_eta) * denoised
        if inject:
            sde_noise = math.sqrt(-math.expm1(-2 * r * h * eta)) * context.noise(sigma, sigma_1)
            x_2 = x_2 + sde_noise * sigma_1 * s_noise
        denoised_2 = yield x_2, sigma_1
        # Stage 2: the whole step, with the second estimate as φ₁ midpoint or φ₂ correction.
        if solver_type == "phi_1":
            estimate = math.expm1(-h_eta) * torch.lerp(denoised, denoised_2, 1 / (2 * r))
        else:
            b_2 = expm1_ratio(-h_eta) / r
            estimate = (math.expm1(-h_eta) - b_2) * denoised + b_2 * denoised_2
        x = _decayed(x, sigma, sigma_next, h * eta) - alpha_of(sigma_next, flow) * estimate
        if inject:
            sde_noise = _carried(sde_noise, (r - 1) * h * eta, context.noise(sigma_1, sigma_next))
            x = x + sde_noise * sigma_next * s_noise
    return x


def seeds_3(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """SEEDS-3: the three-stage solver (stage points r_1 = 1/3, r_2 = 2/3 by default, options r_1, r_2).

    eta (default 1) and s_noise (times noise_scale); flow form through λ; Gaussian noise per sub-step."""
    flow, eta = context.flow, context.eta
    r_1, r_2 = float(option(context, "r_1", 1.0 / 3)), float(option(context, "r_2", 2.0 / 3))
    s_noise = noise_scaled(context, context.s_noise)
    inject = eta > 0 and s_noise > 0
    sigmas = offset_first_sigma(sigmas, context)
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        if sigma_next == 0:
            x = denoised
            continue
        lam_s, lam_t = half_log_snr(sigma, flow), half_log_snr(sigma_next, flow)
        h = lam_t - lam_s
        h_eta = h * (eta + 1)
        sigma_1 = sigma_of_half_log_snr(lerp(lam_s, lam_t, r_1), flow)
        sigma_2 = sigma_of_half_log_snr(lerp(lam_s, lam_t, r_2), flow)
        x_2 = _decayed(x, sigma, sigma_1, r_1 * h * eta) - alpha_of(sigma_1, flow) * math.expm1(-r_1 * h_eta) * denoised
        if inject:
            sde_noise = math.sqrt(-math.expm1(-2 * r_1 * h * eta)) * context.noise(sigma, sigma_1)
            x_2 = x_2 + sde_noise * sigma_1 * s_noise
        denoised_2 = yield x_2, sigma_1
        a_2 = r_2 / r_1 * expm1_ratio(-r_2 * h_eta)
        estimate = (math.expm1(-r_2 * h_eta) - a_2) * denoised + a_2 * denoised_2
        x_3 = _decayed(x, sigma, sigma_2, r_2 * h * eta) - alpha_of(sigma_2, flow) * estimate
        if inject:
            sde_noise = _carried(sde_noise, (r_1 - r_2) * h * eta, context.noise(sigma_1, sigma_2))
            x_3 = x_3 + sde_noise * sigma_2 * s_noise
        denoised_3 = yield x_3, sigma_2
        b_3 = expm1_ratio(-h_eta) / r_2
        estimate = (math.expm1(-h_eta) - b_3) * denoised + b_3 * denoised_3
        x = _decayed(x, sigma, sigma_next, h * eta) - alpha_of(sigma_next, flow) * estimate
        if inject:
            sde_noise = _carried(sde_noise, (r_2 - 1) * h * eta, context.noise(sigma_2, sigma_next))
            x = x + sde_noise * sigma_next * s_noise
    return x


def _decayed(x: torch.Tensor, sigma: float, sigma_to: float, damping: float) -> torch.Tensor:
    """The carried part of x in a SEEDS stage: (σ_to/σ)·e^(-η·r·h)·x."""
    return (sigma_to / sigma * math.exp(-damping)) * x


def _carried(sde_noise: torch.Tensor, segment: float, fresh: torch.Tensor) -> torch.Tensor:
    """SEEDS's noise across sub-steps: the earlier noise decays by e^segment and the rest of the
    interval's variance, 1 - e^(2·segment), is fresh (segment = (r_from - r_to)·h·η ≤ 0)."""
    return sde_noise * math.exp(segment) + math.sqrt(-math.expm1(2 * segment)) * fresh

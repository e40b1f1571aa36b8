"""ComfyUI's CFG++ samplers: the guided estimate for the clean image, the unguided one for the noise.

Written from ComfyUI's comfy/k_diffusion/sampling.py. ComfyUI reads the unconditional prediction
through a post-CFG hook ("uncond_denoised", with the cfg=1 shortcut turned off); here the caller sets
context.uncond_denoised before it sends each denoised value, and these samplers read it right after
each yield (they refuse to run without it). With D_uncond = D each reduces to its plain sampler.
"""

from __future__ import annotations

import math

import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.samplers_comfy_base import (
    alpha_of, ancestral_step, flow_ancestral_step, half_log_snr, noise_scaled, sigma_of_half_log_snr, uncond_of,
    ve_sigma)
from diffusers_tui.engine.sampling.sigma.samplers_multistep import _gradient_estimation, _res_multistep


def euler_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Euler CFG++: euler_ancestral_cfg_pp with eta 0 and s_noise 0 (no noise, whatever the context)."""
    return (yield from _euler_ancestral_cfg_pp(x, sigmas, context, eta=0.0, s_noise=0.0))


def euler_ancestral_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Euler ancestral CFG++ (a DDIM step in the model's own α, σ): eta, s_noise times noise_scale.

    Flow form: α = 1 - σ, the ancestral split taken on σ/α, and the noise scaled by α_next."""
    return (yield from _euler_ancestral_cfg_pp(x, sigmas, context, context.eta, context.s_noise))


def _euler_ancestral_cfg_pp(x, sigmas, context: SamplerContext, eta: float, s_noise: float):
    flow = context.flow
    s_noise = noise_scaled(context, s_noise)
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        uncond = uncond_of(context, "euler_ancestral_cfg_pp")
        if sigma_next == 0:
            x = denoised
            continue
        alpha_s, alpha_t = alpha_of(sigma, flow), alpha_of(sigma_next, flow)
        to_noise = (x - alpha_s * uncond) / sigma
        sigma_down, sigma_up = ancestral_step(ve_sigma(sigma, alpha_s), ve_sigma(sigma_next, alpha_t), eta)
        x = alpha_t * denoised + (alpha_t * sigma_down) * to_noise
        if eta > 0 and s_noise > 0:
            x = x + alpha_t * context.noise(sigma, sigma_next) * s_noise * sigma_up
    return x


def dpmpp_2s_ancestral_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """DPM-Solver++(2S) ancestral CFG++: both stages along the unguided estimates, the guidance
    D - D_uncond of the step's first call added at its end (ComfyUI's newest form; its second call
    is made for its unconditional prediction only). eta, s_noise times noise_scale; Gaussian noise.

    Flow form (ComfyUI's _RF_cfg_pp): the rectified-flow ancestral split, λ = log((1-σ)/σ) for the
    midpoint (σ = 0.9999 when σ is 1), and the guidance scaled by α_next = 1 - σ_next."""
    if context.flow:
        return (yield from _dpmpp_2s_ancestral_cfg_pp_flow(x, sigmas, context))
    eta, s_noise = context.eta, noise_scaled(context, context.s_noise)
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        uncond = uncond_of(context, "dpmpp_2s_ancestral_cfg_pp")
        guidance = denoised - uncond
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0:
            x = x + (x - uncond) / sigma * (sigma_down - sigma)
        else:
            sigma_mid = math.sqrt(sigma * sigma_down)  # halfway in -log σ
            ratio = sigma_mid / sigma  # e^(-h/2)
            yield ratio * x - (ratio - 1) * uncond, sigma_mid
            uncond_2 = uncond_of(context, "dpmpp_2s_ancestral_cfg_pp")
            x = (sigma_down / sigma) * x - (sigma_down / sigma - 1) * uncond_2
        if sigma_next > 0 and sigma_up > 0:
            x = x + context.noise(sigma, sigma_next) * s_noise * sigma_up
        x = x + guidance  # α = 1 off flow models
    return x


def _dpmpp_2s_ancestral_cfg_pp_flow(x, sigmas, context: SamplerContext):
    eta, s_noise = context.eta, noise_scaled(context, context.s_noise)
    for sigma, sigma_next in zip(sigmas, sigmas[1:]):
        denoised = yield x, sigma
        uncond = uncond_of(context, "dpmpp_2s_ancestral_cfg_pp")
        guidance = denoised - uncond
        sigma_down, rescale, renoise = flow_ancestral_step(sigma, sigma_next, eta)
        if sigma_next == 0:
            x = x + (x - uncond) / sigma * (sigma_down - sigma)
        else:
            sigma_mid = 0.9999 if sigma == 1.0 else _flow_midpoint(sigma, sigma_down)
            ratio = sigma_mid / sigma
            yield ratio * x + (1 - ratio) * uncond, sigma_mid
            uncond_2 = uncond_of(context, "dpmpp_2s_ancestral_cfg_pp")
            ratio = sigma_down / sigma
            x = ratio * x + (1 - ratio) * uncond_2
        if sigma_next > 0 and eta > 0:
            x = rescale * x + context.noise(sigma, sigma_next) * s_noise * renoise
        x = x + (1 - sigma_next) * guidance
    return x


def _flow_midpoint(sigma: float, sigma_down: float) -> float:
    """The σ halfway between σ and σ_down in λ = log((1-σ)/σ)."""
    lam, lam_down = half_log_snr(sigma, True), half_log_snr(sigma_down, True)
    return sigma_of_half_log_snr(lam + 0.5 * (lam_down - lam), True)


def dpmpp_2m_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """DPM-Solver++(2M) CFG++: the multistep correction from the guided estimate against the previous
    unguided one, the decay applied to the unguided estimate. Deterministic; no flow form."""
    old_uncond = None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        uncond = uncond_of(context, "dpmpp_2m_cfg_pp")
        decay = sigma_next / sigma  # e^-h with h = log σ - log σ_next
        if old_uncond is None or sigma_next == 0:
            mix = -decay * uncond
        else:
            r = math.log(sigmas[i - 1] / sigma) / math.log(sigma / sigma_next)
            mix = -decay * uncond - (decay - 1) * (1 / (2 * r)) * (denoised - old_uncond)
        x = denoised + mix + decay * x
        old_uncond = uncond
    return x


def res_multistep_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """RES multistep CFG++ (deterministic; see samplers_multistep.res_multistep)."""
    return (yield from _res_multistep(x, sigmas, context, eta=0.0, cfg_pp=True))


def res_multistep_ancestral_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """RES multistep ancestral CFG++ (eta, s_noise times noise_scale; Gaussian noise)."""
    return (yield from _res_multistep(x, sigmas, context, eta=context.eta, cfg_pp=True))


def gradient_estimation_cfg_pp(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Gradient estimation CFG++: x = D + σ_next·d_uncond, then the slope-change correction (ge_gamma)."""
    return (yield from _gradient_estimation(x, sigmas, context, cfg_pp=True))


def cfgpp_ud10_ab(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """CFG++ "UD10 AB": CFG++ Euler whose unguided slope is extrapolated from the last one (weight 0.1),
    blended a quarter of the way to a variable-step Adams-Bashforth 2 step, and on the step to σ = 0
    replaced by the denoised estimate extrapolated linearly to σ = 0. Flow form through α = 1 - σ.

    From ComfyUI's _sample_cfgpp_history (history_weight 0.25, zero_weight 1, zero_order 1,
    uncond_history_weight 0.1); options history_weight, zero_weight, zero_order, uncond_history_weight."""
    history_weight = float(context.options.get("history_weight", 0.25))
    zero_weight = context.options.get("zero_weight", 1.0)
    zero_order = int(context.options.get("zero_order", 1))
    uncond_weight = float(context.options.get("uncond_history_weight", 0.1))
    flow = context.flow
    last_derivative = old_uncond_slope = None
    denoised_history: list[torch.Tensor] = []
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        uncond = uncond_of(context, "cfgpp_ud10_ab")
        alpha_s = alpha_of(sigma, flow)
        alpha_t = alpha_of(sigma_next, flow) if sigma_next != 0 else 1.0
        uncond_slope = current_slope = (x - alpha_s * uncond) / sigma
        dt = sigma_next - sigma
        if i > 0 and uncond_weight:
            step_ratio = dt / (sigma - sigmas[i - 1])
            uncond_slope = uncond_slope + uncond_weight * step_ratio * (current_slope - old_uncond_slope)
        euler_step = alpha_t * denoised + sigma_next * uncond_slope - x
        derivative = euler_step / dt
        if last_derivative is None:
            step = euler_step
        else:
            w_now, w_before = _adams_bashforth_2(sigmas[i - 1], sigma, sigma_next)
            step = torch.lerp(euler_step, w_now * derivative + w_before * last_derivative, history_weight)
        x = x + step
        if sigma_next == 0 and zero_weight is not None and denoised_history:
            at_zero = _zero_extrapolation(sigmas, i, denoised, denoised_history, zero_order)
            x = torch.lerp(x, at_zero, float(zero_weight))
        denoised_history = (denoised_history + [denoised])[-2:]
        last_derivative, old_uncond_slope = derivative, current_slope
    return x


def _adams_bashforth_2(sigma_prev: float, sigma: float, sigma_next: float) -> tuple[float, float]:
    """The linear-multistep weights of the slopes at σ and σ_prev over [σ, σ_next] (Lagrange basis integrals)."""
    dt = sigma_next - sigma
    w_before = dt**2 / (2 * (sigma_prev - sigma))
    return dt - w_before, w_before


def _zero_extrapolation(sigmas, i: int, denoised, history, order: int) -> torch.Tensor:
    """The denoised estimates extrapolated to σ = 0: linearly from the last two, or quadratically (order 2)."""
    if order == 2 and len(history) > 1:
        s_0, s_1, s_2 = sigmas[i - 2], sigmas[i - 1], sigmas[i]
        w_0 = s_1 * s_2 / ((s_0 - s_1) * (s_0 - s_2))
        w_1 = s_0 * s_2 / ((s_1 - s_0) * (s_1 - s_2))
        w_2 = s_0 * s_1 / ((s_2 - s_0) * (s_2 - s_1))
        return w_0 * history[-2] + w_1 * history[-1] + w_2 * denoised
    slope = (denoised - history[-1]) / (sigmas[i] - sigmas[i - 1])
    return denoised - sigmas[i] * slope

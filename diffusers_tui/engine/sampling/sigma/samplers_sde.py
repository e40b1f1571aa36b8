"""k-diffusion's DPM-Solver++ SDE samplers (Brownian-tree noise), and ComfyUI's form of them on flow models."""

from __future__ import annotations

import dataclasses
import math

from .context import SamplerContext, SamplerRun
from .model_sigmas import time_snr_shift
from .sampler_math import alpha_of, ancestral_step, half_log_snr
from .sampler_math import sigma_of_half_log_snr as sigma_of
from .samplers_kdiffusion import flow_s_noise, to_d

# These samplers step in half-logSNR λ = log(α/σ). On ε/v models (VE σ, α = 1) that is -log σ, exactly as
# k-diffusion writes them. On flow models (x = (1-σ) x0 + σ ε, α = 1-σ) ComfyUI steps in λ = log((1-σ)/σ)
# and carries α through every term; with α = 1 its expressions are k-diffusion's.



def flow_sigmas(sigmas: list[float], context: SamplerContext) -> list[float]:
    """ComfyUI's offset_first_sigma_for_snr: on a flow model a first σ ≥ 1 (λ = -inf) becomes
    model_sampling.percent_to_sigma(1e-4). options["first_sigma_offset"] gives that σ; else it is SD3's
    time_snr_shift(options["shift"], 1 - 1e-4) (Flux's own shift function gives a different one)."""
    if not context.flow or len(sigmas) <= 1 or sigmas[0] < 1:
        return sigmas
    offset = context.options.get("first_sigma_offset")
    if offset is None:
        offset = float(time_snr_shift(context.options.get("shift", 1.0), 1 - 1e-4))
    return [offset] + list(sigmas[1:])


def _adds_noise(context: SamplerContext, eta: float, s_noise: float) -> bool:
    """k-diffusion draws the (Brownian) noise whatever eta is; ComfyUI's flow path only when it is used."""
    return not context.flow or (eta > 0 and s_noise > 0)


def sample_dpmpp_sde(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM++ SDE" (sample_dpmpp_sde): DPM-Solver++ stochastic, two calls a step (one on the last);
    the intermediate point at r = options["r"] (1/2) of the step in λ. Noise: two Brownian draws a step."""
    flow, eta, r = context.flow, context.eta, context.options.get("r", 1 / 2)
    s_noise = flow_s_noise(context) if flow else context.s_noise
    sigmas = flow_sigmas(sigmas, context)
    fac = 1 / (2 * r)
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        if sigmas[i + 1] == 0:
            # k-diffusion: an Euler step to 0 (which lands on D); ComfyUI writes D itself.
            x = denoised if flow else x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
            continue
        lam, lam_next = half_log_snr(sigmas[i], flow), half_log_snr(sigmas[i + 1], flow)
        lam_s = lam + r * (lam_next - lam)
        sigma_s = sigma_of(lam_s, flow)
        # Step 1: an ancestral DPM-Solver-1 step to the intermediate point s.
        x_2, sigma_up = _ancestral_first_order(x, denoised, sigmas[i], lam, sigma_s, lam_s, eta, flow)
        if _adds_noise(context, eta, s_noise):
            x_2 = x_2 + alpha_of(sigma_s, flow) * context.noise(sigmas[i], sigma_s) * s_noise * sigma_up
        denoised_2 = yield x_2, sigma_s
        # Step 2: the same from x to σ_next with D mixed from both calls (second order at r = 1/2).
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x, sigma_up = _ancestral_first_order(x, denoised_d, sigmas[i], lam, sigmas[i + 1], lam_next, eta, flow)
        if _adds_noise(context, eta, s_noise):
            x = x + alpha_of(sigmas[i + 1], flow) * context.noise(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def _ancestral_first_order(x, denoised, sigma: float, lam: float, sigma_to: float, lam_to: float, eta: float,
                           flow: bool):
    """x moved by DPM-Solver++(1) from λ to the ancestral σ_down of the step to λ_to, and the σ_up of noise
    that step owes. The ancestral split is taken in VE terms, σ = e^-λ, on flow models too (ComfyUI)."""
    sigma_down, sigma_up = ancestral_step(math.exp(-lam), math.exp(-lam_to), eta)
    h = -math.log(sigma_down) - lam
    alpha, alpha_to = alpha_of(sigma, flow), alpha_of(sigma_to, flow)
    return (alpha_to / alpha) * math.exp(-h) * x - alpha_to * math.expm1(-h) * denoised, sigma_up


def sample_dpmpp_2m_sde(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM++ 2M SDE" (sample_dpmpp_2m_sde): one call a step, one Brownian draw a step but the last.
    options["solver_type"]: "midpoint" (default) or "heun" (A1111 "DPM++ 2M SDE Heun")."""
    solver_type = context.options.get("solver_type", "midpoint")
    if solver_type not in {"heun", "midpoint"}:
        raise ValueError("solver_type must be 'heun' or 'midpoint'")
    flow, eta = context.flow, context.eta
    s_noise = flow_s_noise(context) if flow else context.s_noise
    sigmas = flow_sigmas(sigmas, context)
    old_denoised, h, h_last = None, None, None
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lam, lam_next = half_log_snr(sigmas[i], flow), half_log_snr(sigmas[i + 1], flow)
            h = lam_next - lam
            h_eta = h * (eta + 1)
            alpha_next = alpha_of(sigmas[i + 1], flow)
            x = sigmas[i + 1] / sigmas[i] * math.exp(-h * eta) * x - alpha_next * math.expm1(-h_eta) * denoised
            if old_denoised is not None:
                r = h_last / h
                if solver_type == "heun":
                    coefficient = -math.expm1(-h_eta) / -h_eta + 1
                else:
                    coefficient = 0.5 * -math.expm1(-h_eta)
                x = x + alpha_next * coefficient * (1 / r) * (denoised - old_denoised)
            if (eta > 0 and s_noise > 0) if flow else eta:
                x = x + context.noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * _noise_fraction(h, eta) * s_noise
        old_denoised, h_last = denoised, h
    return x


def sample_dpmpp_2m_sde_heun(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM++ 2M SDE Heun": sample_dpmpp_2m_sde with solver_type "heun"."""
    heun_context = dataclasses.replace(context, options={**context.options, "solver_type": "heun"})
    return (yield from sample_dpmpp_2m_sde(x, sigmas, heun_context))


def _noise_fraction(h: float, eta: float) -> float:
    """sqrt(1 - e^(-2 η h)): the share of σ_next that is fresh noise after a step of h in λ."""
    return math.sqrt(-math.expm1(-2 * h * eta))


def sample_dpmpp_3m_sde(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM++ 3M SDE" (sample_dpmpp_3m_sde): one call a step, one Brownian draw a step but the last;
    A1111 drops its next-to-last σ (discard_next_to_last_sigma)."""
    flow, eta = context.flow, context.eta
    s_noise = flow_s_noise(context) if flow else context.s_noise
    sigmas = flow_sigmas(sigmas, context)
    denoised_1, denoised_2 = None, None
    h, h_1, h_2 = None, None, None
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lam, lam_next = half_log_snr(sigmas[i], flow), half_log_snr(sigmas[i + 1], flow)
            h = lam_next - lam
            h_eta = h * (eta + 1)
            alpha_next = alpha_of(sigmas[i + 1], flow)
            x = sigmas[i + 1] / sigmas[i] * math.exp(-h * eta) * x - alpha_next * math.expm1(-h_eta) * denoised
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if h_2 is not None:
                # Third order: first and second divided differences of D over the last three steps.
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + (alpha_next * phi_2) * d1 - (alpha_next * phi_3) * d2
            elif h_1 is not None:
                x = x + (alpha_next * phi_2) * (denoised - denoised_1) / (h_1 / h)
            if (eta > 0 and s_noise > 0) if flow else eta:
                x = x + context.noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * _noise_fraction(h, eta) * s_noise
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x

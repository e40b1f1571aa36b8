"""k-diffusion's ODE and ancestral samplers as A1111 runs them, with ComfyUI's flow (RF) forms, and A1111's Restart."""

from __future__ import annotations

import math

from scipy import integrate

from .context import SamplerContext, SamplerRun
# k-diffusion's get_ancestral_step lives with its DPM-Solver (which needs it too); DPM fast and DPM adaptive
# are k-diffusion samplers A1111 lists with these, so they are importable from here as well.
from .sampler_math import ancestral_step, flow_ancestral_step  # noqa: F401
from .samplers_dpm_solver import sample_dpm_adaptive, sample_dpm_fast  # noqa: F401


# ----- shared pieces: the ODE derivative, ancestral splits, churn -----

def to_d(x, sigma: float, denoised):
    """dx/dσ = (x - D(x, σ)) / σ, the probability-flow ODE; the same expression holds on flow models."""
    return (x - denoised) / sigma



def log_midpoint(sigma_a: float, sigma_b: float) -> float:
    """The σ halfway between two in log σ (DPM2's midpoint: k-diffusion's log().lerp(.., 0.5).exp())."""
    log_a = math.log(sigma_a)
    return math.exp(log_a + 0.5 * (math.log(sigma_b) - log_a))


def flow_s_noise(context: SamplerContext) -> float:
    """ComfyUI scales flow models' added noise by model_sampling.noise_scale (1 unless the model says)."""
    return context.s_noise * context.options.get("noise_scale", 1.0)


def _churn(x, sigmas: list[float], i: int, context: SamplerContext):
    """Karras et al.'s churn for Euler, Heun and DPM2: raise σ_i to σ_hat by adding noise. Returns (x, σ_hat).

    k-diffusion draws this noise on every step, used or not, so a shared noise stream (A1111's) stays in step."""
    options = context.options
    s_churn, s_tmin = options.get("s_churn", 0.0), options.get("s_tmin", 0.0)
    s_tmax = options.get("s_tmax", float("inf"))
    gamma = min(s_churn / (len(sigmas) - 1), 2 ** 0.5 - 1) if s_tmin <= sigmas[i] <= s_tmax else 0.0
    eps = context.noise(sigmas[i], sigmas[i + 1]) * context.s_noise
    sigma_hat = sigmas[i] * (gamma + 1)
    if gamma > 0:
        x = x + eps * (sigma_hat ** 2 - sigmas[i] ** 2) ** 0.5
    return x, sigma_hat


# ----- first order -----

def sample_euler(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "Euler" (sample_euler): one call a step; churn when options s_churn > 0."""
    for i in range(len(sigmas) - 1):
        x, sigma_hat = _churn(x, sigmas, i, context)
        denoised = yield x, sigma_hat
        x = x + to_d(x, sigma_hat, denoised) * (sigmas[i + 1] - sigma_hat)
    return x


def sample_euler_ancestral(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "Euler a" (sample_euler_ancestral): one call a step, noise after each step but the last."""
    if context.flow:
        return (yield from sample_euler_ancestral_RF(x, sigmas, context))
    eta, s_noise = context.eta, context.s_noise
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + context.noise(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def sample_euler_ancestral_RF(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """ComfyUI's sample_euler_ancestral_RF, what "euler_ancestral" runs on a flow (CONST) model."""
    eta, s_noise = context.eta, flow_s_noise(context)
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        sigma_down, rescale, renoise = flow_ancestral_step(sigmas[i], sigmas[i + 1], eta)
        ratio = sigma_down / sigmas[i]
        x = ratio * x + (1 - ratio) * denoised
        if eta > 0:
            x = rescale * x + context.noise(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


# ----- second order, single step -----

def sample_heun(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "Heun" (sample_heun): two calls a step, one on the step to σ = 0; churn as Euler."""
    for i in range(len(sigmas) - 1):
        x, sigma_hat = _churn(x, sigmas, i, context)
        x = yield from heun_step(x, sigma_hat, sigmas[i + 1])
    return x


def heun_step(x, sigma: float, sigma_next: float) -> SamplerRun:
    """One Heun (trapezoid) step from σ to σ_next; Euler on the step to 0, where D(σ = 0) is no help."""
    denoised = yield x, sigma
    d = to_d(x, sigma, denoised)
    dt = sigma_next - sigma
    if sigma_next == 0:
        return x + d * dt
    x_2 = x + d * dt
    denoised_2 = yield x_2, sigma_next
    return x + (d + to_d(x_2, sigma_next, denoised_2)) / 2 * dt


def sample_dpm_2(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM2" (sample_dpm_2): two calls a step (the second at the log-σ midpoint), one on the last.

    A1111 builds its σ list one longer and drops the next-to-last σ (discard_next_to_last_sigma)."""
    for i in range(len(sigmas) - 1):
        x, sigma_hat = _churn(x, sigmas, i, context)
        denoised = yield x, sigma_hat
        d = to_d(x, sigma_hat, denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigma_hat)
        else:
            sigma_mid = log_midpoint(sigma_hat, sigmas[i + 1])
            x_2 = x + d * (sigma_mid - sigma_hat)
            denoised_2 = yield x_2, sigma_mid
            x = x + to_d(x_2, sigma_mid, denoised_2) * (sigmas[i + 1] - sigma_hat)
    return x


def sample_dpm_2_ancestral(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM2 a" (sample_dpm_2_ancestral): DPM2 steps down to σ_down, then noise up to σ_next."""
    if context.flow:
        return (yield from sample_dpm_2_ancestral_RF(x, sigmas, context))
    eta, s_noise = context.eta, context.s_noise
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = log_midpoint(sigmas[i], sigma_down)
            x_2 = x + d * (sigma_mid - sigmas[i])
            denoised_2 = yield x_2, sigma_mid
            x = x + to_d(x_2, sigma_mid, denoised_2) * (sigma_down - sigmas[i])
            x = x + context.noise(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def sample_dpm_2_ancestral_RF(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """ComfyUI's sample_dpm_2_ancestral_RF, what "dpm_2_ancestral" runs on a flow model."""
    eta, s_noise = context.eta, flow_s_noise(context)
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        sigma_down, rescale, renoise = flow_ancestral_step(sigmas[i], sigmas[i + 1], eta)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = log_midpoint(sigmas[i], sigma_down)
            x_2 = x + d * (sigma_mid - sigmas[i])
            denoised_2 = yield x_2, sigma_mid
            x = x + to_d(x_2, sigma_mid, denoised_2) * (sigma_down - sigmas[i])
            x = rescale * x + context.noise(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


def sample_dpmpp_2s_ancestral(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM++ 2S a" (sample_dpmpp_2s_ancestral): DPM-Solver++(2S) to σ_down, two calls a step
    (one where σ_down is 0), then noise up to σ_next."""
    if context.flow:
        return (yield from sample_dpmpp_2s_ancestral_RF(x, sigmas, context))
    eta, s_noise = context.eta, context.s_noise
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            # In t = -log σ, with the midpoint s at r = 1/2.
            t, t_next = -math.log(sigmas[i]), -math.log(sigma_down)
            h = t_next - t
            sigma_s = math.exp(-(t + h / 2))
            x_2 = (sigma_s / sigmas[i]) * x - math.expm1(-h / 2) * denoised
            denoised_2 = yield x_2, sigma_s
            x = (sigma_down / sigmas[i]) * x - math.expm1(-h) * denoised_2
        if sigmas[i + 1] > 0:
            x = x + context.noise(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def sample_dpmpp_2s_ancestral_RF(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """ComfyUI's sample_dpmpp_2s_ancestral_RF: the midpoint is taken in λ = log((1-σ)/σ)."""
    eta, s_noise = context.eta, flow_s_noise(context)
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        sigma_down, rescale, renoise = flow_ancestral_step(sigmas[i], sigmas[i + 1], eta)
        if sigmas[i + 1] == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            sigma_s = _flow_log_snr_midpoint(sigmas[i], sigma_down)
            ratio = sigma_s / sigmas[i]
            denoised_2 = yield ratio * x + (1 - ratio) * denoised, sigma_s
            ratio = sigma_down / sigmas[i]
            x = ratio * x + (1 - ratio) * denoised_2
        if sigmas[i + 1] > 0 and eta > 0:
            x = rescale * x + context.noise(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


def _flow_log_snr_midpoint(sigma: float, sigma_down: float) -> float:
    """The flow σ halfway in λ = log((1-σ)/σ); ComfyUI uses 0.9999 from σ = 1, where λ is -inf."""
    if sigma == 1.0:
        return 0.9999
    lam, lam_down = math.log((1 - sigma) / sigma), math.log((1 - sigma_down) / sigma_down)
    return 1 / (math.exp(lam + (lam_down - lam) / 2) + 1)


# ----- multistep -----

def lms_coefficient(order: int, sigmas: list[float], i: int, j: int) -> float:
    """∫ over [σ_i, σ_i+1] of the Lagrange basis polynomial of σ_(i-j) through the last `order` σs."""
    if order - 1 > i:
        raise ValueError(f"order {order} is too high for step {i}")

    def basis(tau: float) -> float:
        product = 1.0
        for k in range(order):
            if k != j:
                product *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k])
        return product

    return integrate.quad(basis, sigmas[i], sigmas[i + 1], epsrel=1e-4)[0]


def sample_lms(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "LMS" (sample_lms): linear multistep on dx/dσ, one call a step, order options["order"] (4)."""
    order = context.options.get("order", 4)
    derivatives = []
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        derivatives.append(to_d(x, sigmas[i], denoised))
        if len(derivatives) > order:
            derivatives.pop(0)
        current = min(i + 1, order)
        coefficients = [lms_coefficient(current, sigmas, i, j) for j in range(current)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(derivatives)))
    return x


def sample_dpmpp_2m(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM++ 2M" (sample_dpmpp_2m): DPM-Solver++(2M), one call a step. Flow models run it unchanged
    (ComfyUI does too: its step is exact for a constant D on flow models as well)."""
    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = yield x, sigmas[i]
        if sigmas[i + 1] == 0:
            x = denoised  # the step below at t_next = +inf: σ_next/σ = 0 and -expm1(-h) = 1
        else:
            t, t_next = -math.log(sigmas[i]), -math.log(sigmas[i + 1])
            h = t_next - t
            if old_denoised is None:
                denoised_d = denoised
            else:
                r = (t + math.log(sigmas[i - 1])) / h  # h_last / h
                denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * denoised_d
        old_denoised = denoised
    return x


# ----- A1111's Restart (modules/sd_samplers_extra.py) -----

def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """k-diffusion's get_sigmas_karras: n σs from σ_max to σ_min, evenly in σ^(1/ρ), then 0."""
    ramp = [k / (n - 1) for k in range(n)] if n > 1 else [0.0]
    low, high = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(high + r * (low - high)) ** rho for r in ramp] + [0.0]


def _nearest(sigmas: list[float], value: float) -> int:
    """The first index of the σ nearest `value` (torch.argmin of |σ - value|)."""
    return min(range(len(sigmas)), key=lambda k: abs(sigmas[k] - value))


def restart_plan(sigmas: list[float], restart_list: dict | None = None) -> list[tuple[float, float]]:
    """A1111's Restart step list: (σ_from, σ_to) pairs, a Karras run back up from σ ≈ 0.1 to σ ≈ 2 included.

    Without a restart_list ({min σ: [steps, times, max σ]}) A1111 picks one from the step count and, from
    20 steps, replaces the σ list with a shorter Karras one so the total step count stays the same."""
    steps = len(sigmas) - 1
    if restart_list is None:
        restart_list = {}
        if steps >= 20:
            restart_steps, restart_times = (steps // 4, 2) if steps >= 36 else (9, 1)
            sigmas = karras_sigmas(steps - restart_steps * restart_times, sigmas[-2], sigmas[0])
            restart_list = {0.1: [restart_steps + 1, restart_times, 2]}
    by_index = {_nearest(sigmas, key): value for key, value in restart_list.items()}
    plan = []
    for i in range(len(sigmas) - 1):
        plan.append((sigmas[i], sigmas[i + 1]))
        if i + 1 in by_index:
            restart_steps, restart_times, restart_max = by_index[i + 1]
            low, high = i + 1, _nearest(sigmas, restart_max)
            if high < low:
                back_up = karras_sigmas(restart_steps, sigmas[low], sigmas[high])[:-1]
                plan.extend(list(zip(back_up[:-1], back_up[1:])) * restart_times)
    return plan


def sample_restart(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "Restart" (sd_samplers_extra.restart_sampler): Heun steps along restart_plan, two calls a step
    (one to σ = 0); where the plan jumps back up in σ, fresh noise lifts x to the higher σ."""
    s_noise = context.s_noise
    last_sigma = None
    for old_sigma, new_sigma in restart_plan(sigmas, context.options.get("restart_list")):
        if last_sigma is not None and last_sigma < old_sigma:
            x = x + context.noise(last_sigma, old_sigma) * s_noise * (old_sigma ** 2 - last_sigma ** 2) ** 0.5
        x = yield from heun_step(x, old_sigma, new_sigma)
        last_sigma = new_sigma
    return x

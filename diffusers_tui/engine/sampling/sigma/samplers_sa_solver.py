"""SA-Solver (stochastic Adams predictor-corrector, arXiv 2309.05019) as ComfyUI runs it, with its PECE form.

Written from ComfyUI's comfy/k_diffusion/sampling.py (sample_sa_solver) and sa_solver.py. Data
prediction in half-log-SNR λ, so it has a flow form (α = 1 - σ). The stochasticity τ is eta inside a σ
window and 0 outside: by default from percent_to_sigma(0.2) down to percent_to_sigma(0.8) (options
sde_start_percent, sde_end_percent, or a tau_func of σ). s_noise times noise_scale; Gaussian noise.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.samplers_comfy_base import (
    half_log_snr, noise_scaled, offset_first_sigma, option, percent_to_sigma)


def sa_solver(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """SA-Solver: one model call per step; predictor order 3, corrector order 4 (options predictor_order,
    corrector_order, simple_order_2). The corrector reuses the next step's model call."""
    return (yield from _sa_solver(x, sigmas, context, use_pece=bool(option(context, "use_pece", False))))


def sa_solver_pece(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """SA-Solver PECE: predict, evaluate, correct, evaluate again at the corrected state (two calls a
    step after the first, the last step included)."""
    return (yield from _sa_solver(x, sigmas, context, use_pece=True))


def tau_window(start_sigma: float, end_sigma: float, eta: float) -> Callable[[float], float]:
    """sa_solver.get_tau_interval_func: τ = eta for start ≥ σ ≥ end, else 0 (an ODE step)."""
    return lambda sigma: (eta if start_sigma >= sigma >= end_sigma else 0.0) if eta > 0 else 0.0


def _sa_solver(x, sigmas, context: SamplerContext, use_pece: bool):
    if len(sigmas) <= 1:
        return x
    flow = context.flow
    predictor_order = int(option(context, "predictor_order", 3))
    corrector_order = int(option(context, "corrector_order", 4))
    simple_order_2 = bool(option(context, "simple_order_2", False))
    s_noise = noise_scaled(context, context.s_noise)
    tau_of = option(context, "tau_func", None) or tau_window(
        percent_to_sigma(context, float(option(context, "sde_start_percent", 0.2)), sigmas),
        percent_to_sigma(context, float(option(context, "sde_end_percent", 0.8)), sigmas), context.eta)
    sigmas = offset_first_sigma(sigmas, context)
    lambdas = [half_log_snr(s, flow) for s in sigmas]
    keep = max(predictor_order, corrector_order)
    lower_order_to_end = sigmas[-1] == 0  # fewer points near the end, for stability
    x_pred, h, tau, noise = x, 0.0, 0.0, None
    estimates: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = yield x_pred, sigmas[i]
        estimates = (estimates + [denoised])[-keep:]
        p_order = min(predictor_order, len(estimates))
        c_order = 0 if i == 0 or (sigmas[i + 1] == 0 and not use_pece) else min(corrector_order, len(estimates))
        if lower_order_to_end:
            p_order = min(p_order, len(sigmas) - 2 - i)
            c_order = min(c_order, len(sigmas) - 1 - i)
        if c_order == 0:
            x = x_pred
        else:
            # Correct the last prediction with the estimate just made at it (λ_i-1 → λ_i).
            b = adams_weights(sigmas[i], lambdas[i - c_order + 1:i + 1], lambdas[i - 1], lambdas[i], tau,
                              simple_order_2, corrector=True)
            x = (sigmas[i] / sigmas[i - 1] * math.exp(-(tau**2) * h)) * x + _weighted(estimates[-c_order:], b)
            if tau > 0 and s_noise > 0:
                x = x + noise  # the same noise the prediction drew
            if use_pece:
                denoised = yield x, sigmas[i]
                estimates[-1] = denoised
        if sigmas[i + 1] == 0:
            x_pred = denoised
            continue
        tau = float(tau_of(sigmas[i + 1]))
        b = adams_weights(sigmas[i + 1], lambdas[i - p_order + 1:i + 1], lambdas[i], lambdas[i + 1], tau,
                          simple_order_2, corrector=False)
        h = lambdas[i + 1] - lambdas[i]
        x_pred = (sigmas[i + 1] / sigmas[i] * math.exp(-(tau**2) * h)) * x + _weighted(estimates[-p_order:], b)
        if tau > 0 and s_noise > 0:
            spread = math.sqrt(-math.expm1(-2 * tau**2 * h))
            noise = context.noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * spread * s_noise
            x_pred = x_pred + noise
    # ComfyUI's newest returns the last prediction (the denoised estimate when σ ends at 0).
    return x_pred


def _weighted(estimates: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    return sum(w * e for w, e in zip(weights, estimates))


def adams_weights(sigma_next: float, nodes: list[float], lam_s: float, lam_t: float, tau: float,
                  simple_order_2: bool = False, corrector: bool = False) -> list[float]:
    """b_i of SA-Solver (eqs. 15 and 18), oldest node first: α_t times ∫ from λ_s to λ_t of
    (1+τ²)·e^((1+τ²)(λ-λ_t))·L_i(λ) dλ, L_i the Lagrange basis on the nodes (λs of the estimates)."""
    if simple_order_2 and len(nodes) == 2:
        return _simple_order_2_weights(sigma_next, nodes, lam_s, lam_t, tau, corrector)
    moments = _exponential_moments(lam_s, lam_t, len(nodes), tau)
    powers = torch.tensor([[node**p for node in nodes] for p in range(len(nodes))], dtype=torch.float64)
    integrals = torch.linalg.solve(powers, torch.tensor(moments, dtype=torch.float64))
    alpha_t = sigma_next * math.exp(lam_t)
    return [alpha_t * float(value) for value in integrals]


def _exponential_moments(lam_s: float, lam_t: float, count: int, tau: float) -> list[float]:
    """(1+τ²)∫ e^((1+τ²)(λ-λ_t)) λ^p dλ over [λ_s, λ_t] for p < count, by repeated integration by parts:
    Σ_q (-1)^(p-q) p!/q! (1+τ²)^(q-p) (λ_t^q - λ_s^q e^(-(1+τ²)h))."""
    a = 1 + tau**2
    decay = math.exp(-a * (lam_t - lam_s))
    ends = [lam_t**q - lam_s**q * decay for q in range(count)]
    return [sum((-1) ** (p - q) * math.factorial(p) / math.factorial(q) * a ** (q - p) * ends[q] for q in range(p + 1))
            for p in range(count)]


def _simple_order_2_weights(sigma_next, nodes, lam_s, lam_t, tau, corrector) -> list[float]:
    """The paper's simplified order-2 weights (appendix D), oldest node first."""
    a = 1 + tau**2
    h = lam_t - lam_s
    alpha_t = sigma_next * math.exp(lam_t)
    whole = alpha_t * -math.expm1(-h * a)
    if corrector:
        newest = alpha_t * (0.5 * a * h)
        return [whole - newest, newest]
    older = alpha_t * (0.5 * a * h**2) / (nodes[-2] - lam_s)
    return [older, whole - older]

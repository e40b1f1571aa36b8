"""ComfyUI's multistep samplers: iPNDM, iPNDM-v, DEIS, RES multistep and gradient estimation.

Written from ComfyUI's comfy/k_diffusion/sampling.py and deis.py (which follow zju-pi's diff-sampler).
One model call per step; the history of slopes or estimates makes them higher order. None has a
flow form: they step the Karras ODE dx/dσ = (x - D)/σ, which is the flow ODE as well.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.samplers_comfy_base import ancestral_step, noise_scaled, option, uncond_of

#: Fixed-step Adams-Bashforth weights by order, newest slope first (iPNDM).
ADAMS_BASHFORTH = {1: (1.0,), 2: (3 / 2, -1 / 2), 3: (23 / 12, -16 / 12, 5 / 12),
                   4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}


def ipndm(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Improved PNDM: Adams-Bashforth on the slopes with fixed-step weights, order rising to max_order (4)."""
    max_order = _clamped_order(context, 4)
    history: list[torch.Tensor] = []  # newest slope first
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        slope = (x - denoised) / sigma
        slopes = [slope] + history
        if sigma_next == 0:
            x = denoised
        else:
            weights = ADAMS_BASHFORTH[min(max_order, i + 1)]
            x = x + (sigma_next - sigma) * sum(w * s for w, s in zip(weights, slopes))
        history = slopes[: max_order - 1]
    return x


def ipndm_v(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """iPNDM with variable-step weights (from the step sizes so far), order rising to max_order (4).

    Its order-4 weights are diff-sampler's, which are third-order accurate (not AB4 on even steps)."""
    max_order = _clamped_order(context, 4)
    history: list[torch.Tensor] = []
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        slope = (x - denoised) / sigma
        slopes = [slope] + history
        if sigma_next == 0:
            x = denoised
        else:
            order = min(max_order, i + 1)
            steps = [sigma_next - sigma] + [sigmas[i - k] - sigmas[i - k - 1] for k in range(order - 1)]
            weights = _variable_step_weights(steps)
            x = x + (sigma_next - sigma) * sum(w * s for w, s in zip(weights, slopes))
        history = slopes[: max_order - 1]
    return x


def _variable_step_weights(steps: list[float]) -> tuple[float, ...]:
    """iPNDM-v's weights for the slopes, newest first, from h_n (this step) and the earlier h_n-1, h_n-2, h_n-3."""
    if len(steps) == 1:
        return (1.0,)
    h, h_1 = steps[0], steps[1]
    base = (2 + h / h_1) / 2, -(h / h_1) / 2
    if len(steps) == 2:
        return base
    h_2 = steps[2]
    third = (1 - h / (3 * (h + h_1)) * (h * (h + h_1)) / (h_1 * (h_1 + h_2))) / 2
    if len(steps) == 3:
        return base[0] + third, base[1] - (1 + h_1 / h_2) * third, third * h_1 / h_2
    h_3 = steps[3]
    fourth = ((1 - h / (3 * (h + h_1))) / 2 + (1 - h / (2 * (h + h_1))) * h / (6 * (h + h_1 + h_2))) \
        * (h * (h + h_1) * (h + h_1 + h_2)) / (h_1 * (h_1 + h_2) * (h_1 + h_2 + h_3))
    spread = h_1 * (h_1 + h_2) / (h_2 * (h_2 + h_3))
    return (base[0] + third + fourth,
            base[1] - (1 + h_1 / h_2) * third - (1 + h_1 / h_2 + spread) * fourth,
            third * h_1 / h_2 + (h_1 / h_2 + spread * (1 + h_2 / h_3)) * fourth,
            -fourth * spread * h_1 / h_2)


def deis(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """DEIS: the slope history integrated exactly against the noise schedule, order rising to max_order (3).

    Options max_order (1..4) and deis_mode: "tab" (default; the integral in a VP time fitted to EDM's
    σ range 0.002..80, by a 10 000-point sum) or "rhoab" (Lagrange polynomials in σ). The last step is Euler."""
    max_order = _clamped_order(context, 3)
    mode = option(context, "deis_mode", "tab")
    weights = deis_coefficients(sigmas, max_order, mode)
    history: list[torch.Tensor] = []
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        slope = (x - denoised) / sigma
        slopes = [slope] + history
        order = 1 if sigma_next <= 0 else min(max_order, i + 1)
        if order == 1:
            x = x + (sigma_next - sigma) * slope
        else:
            x = x + sum(w * s for w, s in zip(weights[i], slopes))
        history = slopes[: max_order - 1]
    return x


def deis_coefficients(sigmas: list[float], max_order: int, mode: str = "tab") -> list[list[float]]:
    """Per step, the weight of each slope in the history (newest first); empty where the step is Euler.

    ComfyUI's rhoab table asks for one slope more than the sampler keeps from step 4 on (and fails);
    here every table has exactly as many weights as the step's order."""
    if mode not in ("tab", "rhoab"):
        raise ValueError("deis_mode must be 'tab' or 'rhoab'")
    times = _deis_vp_times(sigmas) if mode == "tab" else list(sigmas)
    table = []
    for i in range(len(sigmas) - 1):
        order = min(i + 1, max_order)
        if order == 1 or sigmas[i + 1] <= 0:
            table.append([])
            continue
        nodes = [times[i - k] for k in range(order)]
        if mode == "tab":
            table.append(_deis_tab_weights(times[i], times[i + 1], nodes))
        else:
            table.append([_lagrange_integral(nodes, j, times[i], times[i + 1]) for j in range(order)])
    return table


#: DEIS's VP schedule, fitted so that its σ runs from 0.002 at t = 1e-3 to 80 at t = 1 (EDM's range).
_EPS_S, _EDM_SIGMA_MIN, _EDM_SIGMA_MAX = 1e-3, 0.002, 80.0
_BETA_D = 2 * (math.log(_EDM_SIGMA_MIN**2 + 1) / _EPS_S - math.log(_EDM_SIGMA_MAX**2 + 1)) / (_EPS_S - 1)
_BETA_MIN = math.log(_EDM_SIGMA_MAX**2 + 1) - 0.5 * _BETA_D


def _deis_vp_times(sigmas: list[float]) -> list[float]:
    """The VP time of each σ: σ² + 1 = exp(β_d t²/2 + β_min t), solved for t."""
    return [(math.sqrt(_BETA_MIN**2 + 2 * _BETA_D * math.log(s**2 + 1)) - _BETA_MIN) / _BETA_D for s in sigmas]


def _deis_tab_weights(t_cur: float, t_next: float, nodes: list[float], points: int = 10000) -> list[float]:
    """∫ dσ/dt · L_j(t) dt over the step, by DEIS's sum over `points` samples of the interval.

    dσ/dt = -½ d log ᾱ/dt / √(ᾱ(1-ᾱ)) with log ᾱ = -(β_d t²/2 + β_min t)."""
    taus = torch.linspace(t_cur, t_next, points, dtype=torch.float64)
    dtau = (t_next - t_cur) / points
    abar = torch.exp(-0.5 * taus**2 * _BETA_D - taus * _BETA_MIN)
    dsigma_dt = 0.5 * (_BETA_D * taus + _BETA_MIN) / torch.sqrt(abar * (1 - abar))
    weights = []
    for j, node in enumerate(nodes):
        basis = torch.ones_like(taus)
        for k, other in enumerate(nodes):
            if k != j:
                basis = basis * (taus - other) / (node - other)
        weights.append(float(torch.sum(dsigma_dt * basis)) * dtau)
    return weights


def _lagrange_integral(nodes: list[float], j: int, start: float, end: float) -> float:
    """∫ from start to end of the Lagrange basis polynomial that is 1 at nodes[j] and 0 at the others."""
    others = [node for k, node in enumerate(nodes) if k != j]
    basis = np.polynomial.Polynomial.fromroots(others) / np.prod([nodes[j] - other for other in others])
    antiderivative = basis.integ()
    return float(antiderivative(end) - antiderivative(start))


def _clamped_order(context: SamplerContext, default: int) -> int:
    """max_order within 1..4, the orders these samplers have weights for (ComfyUI's past 4 never steps)."""
    return max(1, min(4, int(option(context, "max_order", default))))


# ----- RES multistep (arXiv 2308.02157) -----

def res_multistep(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """RES second-order multistep in log σ, deterministic (eta 0 whatever the context)."""
    return (yield from _res_multistep(x, sigmas, context, eta=0.0, cfg_pp=False))


def res_multistep_ancestral(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """RES multistep with k-diffusion's ancestral split (eta, s_noise times noise_scale; Gaussian noise)."""
    return (yield from _res_multistep(x, sigmas, context, eta=context.eta, cfg_pp=False))


def _res_multistep(x, sigmas, context: SamplerContext, eta: float, cfg_pp: bool):
    """The shared loop. With cfg_pp the steps take the unconditional prediction as the noise direction
    and add the guidance D - D_uncond back (CFG++), and the history holds unconditional predictions."""
    s_noise = noise_scaled(context, context.s_noise)
    old_estimate, old_sigma_down = None, None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        uncond = uncond_of(context, "res_multistep CFG++") if cfg_pp else denoised
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0 or old_estimate is None:
            x = _res_euler(x, sigma, sigma_down, denoised, uncond, cfg_pp)
        else:
            b_1, b_2, h = _res_weights(sigma, sigma_down, old_sigma_down, sigmas[i - 1])
            if cfg_pp:
                x = x + (denoised - uncond)
            x = math.exp(-h) * x + h * (b_1 * uncond + b_2 * old_estimate)
        if sigma_next > 0 and sigma_up > 0:
            x = x + context.noise(sigma, sigma_next) * s_noise * sigma_up
        old_estimate, old_sigma_down = uncond, sigma_down
    return x


def _res_euler(x, sigma: float, sigma_down: float, denoised, uncond, cfg_pp: bool):
    """The first and the last step: Euler to σ_down (CFG++: from the guided estimate along the unguided slope)."""
    if cfg_pp:
        return denoised + (x - uncond) / sigma * sigma_down
    return x + (x - denoised) / sigma * (sigma_down - sigma)


def _res_weights(sigma: float, sigma_down: float, old_sigma_down: float, sigma_prev: float):
    """RES's b₁, b₂ (for the current and the previous estimate) and the step h in -log σ.

    c₂ places the previous estimate: (t_prev - t_old)/h, t = -log σ. ComfyUI's nan_to_num turns 0/0
    into 0; a c₂ of exactly 0 (never on a decreasing schedule) falls back to the first-order step here."""
    h = math.log(sigma) - math.log(sigma_down)
    c_2 = (math.log(old_sigma_down) - math.log(sigma_prev)) / h
    phi_1 = math.expm1(-h) / -h
    phi_2 = (phi_1 - 1.0) / -h
    if c_2 == 0:
        return phi_1, 0.0, h
    return phi_1 - phi_2 / c_2, phi_2 / c_2, h


# ----- gradient estimation (Permenter & Yuan) -----

def gradient_estimation(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """Euler plus a correction by the change of slope: (ge_gamma - 1)·(d - d_prev)·dt (option ge_gamma, 2)."""
    return (yield from _gradient_estimation(x, sigmas, context, cfg_pp=False))


def _gradient_estimation(x, sigmas, context: SamplerContext, cfg_pp: bool):
    ge_gamma = float(option(context, "ge_gamma", 2.0))
    old_slope = None
    for i, (sigma, sigma_next) in enumerate(zip(sigmas, sigmas[1:])):
        denoised = yield x, sigma
        uncond = uncond_of(context, "gradient_estimation_cfg_pp") if cfg_pp else denoised
        slope = (x - uncond) / sigma
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = denoised
        else:
            x = denoised + slope * sigma_next if cfg_pp else x + slope * dt
            if i >= 1:
                x = x + (ge_gamma - 1) * (slope - old_slope) * dt
        old_slope = slope
    return x

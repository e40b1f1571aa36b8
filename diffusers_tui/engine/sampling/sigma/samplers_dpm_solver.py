"""k-diffusion's DPM-Solver (A1111 "DPM fast", "DPM adaptive") as generators."""

from __future__ import annotations

import math

import torch

from .context import SamplerContext, SamplerRun
from .sampler_math import ancestral_step



def _sigma(t: float) -> float:
    return math.exp(-t)


def _t(sigma: float) -> float:
    return -math.log(sigma)


def _eps(cache: dict, key: str, x, t: float) -> SamplerRun:
    """ε(x, t) = (x - D) / σ: one model call, unless this step already has it under `key`.

    k-diffusion caches by role ('eps', 'eps_r1', 'eps_r2') within one step, which is what lets the
    adaptive solver's lower- and higher-order estimates share their model calls."""
    if key not in cache:
        denoised = yield x, _sigma(t)
        cache[key] = (x - denoised) / _sigma(t)
    return cache[key]


def solver_1_step(x, t: float, t_next: float, cache: dict) -> SamplerRun:
    """DPM-Solver-1 (DDIM in t): one call."""
    h = t_next - t
    eps = yield from _eps(cache, "eps", x, t)
    return x - _sigma(t_next) * math.expm1(h) * eps


def solver_2_step(x, t: float, t_next: float, cache: dict, r1: float = 1 / 2) -> SamplerRun:
    """DPM-Solver-2 with its intermediate point at t + r1·h: two calls."""
    h = t_next - t
    eps = yield from _eps(cache, "eps", x, t)
    s1 = t + r1 * h
    u1 = x - _sigma(s1) * math.expm1(r1 * h) * eps
    eps_r1 = yield from _eps(cache, "eps_r1", u1, s1)
    return x - _sigma(t_next) * math.expm1(h) * eps - _sigma(t_next) / (2 * r1) * math.expm1(h) * (eps_r1 - eps)


def solver_3_step(x, t: float, t_next: float, cache: dict, r1: float = 1 / 3, r2: float = 2 / 3) -> SamplerRun:
    """DPM-Solver-3 with intermediate points at t + r1·h and t + r2·h: three calls."""
    h = t_next - t
    eps = yield from _eps(cache, "eps", x, t)
    s1, s2 = t + r1 * h, t + r2 * h
    u1 = x - _sigma(s1) * math.expm1(r1 * h) * eps
    eps_r1 = yield from _eps(cache, "eps_r1", u1, s1)
    u2 = (x - _sigma(s2) * math.expm1(r2 * h) * eps
          - _sigma(s2) * (r2 / r1) * (math.expm1(r2 * h) / (r2 * h) - 1) * (eps_r1 - eps))
    eps_r2 = yield from _eps(cache, "eps_r2", u2, s2)
    return x - _sigma(t_next) * math.expm1(h) * eps - _sigma(t_next) / r2 * (math.expm1(h) / h - 1) * (eps_r2 - eps)


def _ancestral_target(t: float, t_next: float, t_end: float, eta: float) -> tuple[float, float]:
    """Where a DPM-Solver step really goes with eta > 0 (never past t_end), and the noise that restores t_next."""
    if not eta:
        return t_next, 0.0
    sigma_down, _ = ancestral_step(_sigma(t), _sigma(t_next), eta)
    t_down = min(t_end, _t(sigma_down))
    return t_down, (_sigma(t_next) ** 2 - _sigma(t_down) ** 2) ** 0.5


def solver_range(sigmas: list[float], context: SamplerContext) -> tuple[float, float]:
    """The σ range DPM fast and adaptive integrate over: the context's (A1111 passes the model's σ_min and
    σ_max, or in img2img the schedule's last non-zero σ and its first), else the σ list's own."""
    sigma_min = context.sigma_min or min(s for s in sigmas if s > 0)
    sigma_max = context.sigma_max or max(sigmas)
    if sigma_min <= 0 or sigma_max <= 0:
        raise ValueError("sigma_min and sigma_max must not be 0")
    return sigma_min, sigma_max


def fast_orders(nfe: int) -> list[int]:
    """DPM-Solver-Fast's orders: third-order steps, ending in a 2 and 1 (or nfe % 3), totalling nfe calls."""
    m = nfe // 3 + 1
    if nfe % 3 == 0:
        return [3] * (m - 2) + [2, 1]
    return [3] * (m - 1) + [nfe % 3]


def sample_dpm_fast(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM fast" (sample_dpm_fast): n = options["n"] or the σ list's step count model calls, in
    evenly spaced t from σ_max to σ_min (not the σ list's own σs). Ends at σ_min, not 0."""
    sigma_min, sigma_max = solver_range(sigmas, context)
    nfe = context.options.get("n", len(sigmas) - 1)
    eta, s_noise = context.eta, context.s_noise
    t_start, t_end = _t(sigma_max), _t(sigma_min)
    orders = fast_orders(nfe)
    m = nfe // 3 + 1
    ts = [t_start + (t_end - t_start) * k / m for k in range(m)] + [t_end]
    steps = {1: solver_1_step, 2: solver_2_step, 3: solver_3_step}
    for i, order in enumerate(orders):
        t, t_next = ts[i], ts[i + 1]
        t_down, sigma_up = _ancestral_target(t, t_next, t_end, eta)
        x = yield from steps[order](x, t, t_down, {})
        # k-diffusion draws this on every step, eta or not.
        x = x + sigma_up * s_noise * context.noise(_sigma(t), _sigma(t_next))
    return x


class PIDStepSizeController:
    """k-diffusion's PID controller for the adaptive solver's step size h (in t)."""

    def __init__(self, h: float, pcoeff: float, icoeff: float, dcoeff: float, order: float = 1,
                 accept_safety: float = 0.81, eps: float = 1e-8):
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.eps = eps
        self.errs: list[float] = []

    @staticmethod
    def limiter(factor: float) -> float:
        return 1 + math.atan(factor - 1)

    def propose_step(self, error: float) -> bool:
        """Rescale h from this error (and the last accepted ones); say whether the step just tried stands."""
        inv_error = 1 / (float(error) + self.eps)
        if not self.errs:
            self.errs = [inv_error, inv_error, inv_error]
        self.errs[0] = inv_error
        factor = self.limiter(self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3)
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2] = self.errs[1]
            self.errs[1] = self.errs[0]
        self.h *= factor
        return accept


#: sample_dpm_adaptive's defaults, read from options by the same names.
ADAPTIVE_DEFAULTS = {"order": 3, "rtol": 0.05, "atol": 0.0078, "h_init": 0.05, "pcoeff": 0.0, "icoeff": 1.0,
                     "dcoeff": 0.0, "accept_safety": 0.81}


def sample_dpm_adaptive(x, sigmas: list[float], context: SamplerContext) -> SamplerRun:
    """A1111 "DPM adaptive" (sample_dpm_adaptive): DPM-Solver-23 (or 12) with PID step control from σ_max to
    σ_min; `order` calls per attempt, rejected attempts included, so the call count is not known ahead."""
    settings = {**ADAPTIVE_DEFAULTS, **{k: v for k, v in context.options.items() if k in ADAPTIVE_DEFAULTS}}
    order, eta, s_noise = settings["order"], context.eta, context.s_noise
    if order not in {2, 3}:
        raise ValueError("order should be 2 or 3")
    sigma_min, sigma_max = solver_range(sigmas, context)
    t_start, t_end = _t(sigma_max), _t(sigma_min)
    forward = t_end > t_start
    if not forward and eta:
        raise ValueError("eta must be 0 for reverse sampling")
    h_init = abs(settings["h_init"]) * (1 if forward else -1)
    # With noise added the error behaves like a method of order 1.5 (k-diffusion's choice).
    pid = PIDStepSizeController(h_init, settings["pcoeff"], settings["icoeff"], settings["dcoeff"],
                                1.5 if eta else order, settings["accept_safety"])
    s, x_prev = t_start, x
    while (s < t_end - 1e-5) if forward else (s > t_end + 1e-5):
        t = min(t_end, s + pid.h) if forward else max(t_end, s + pid.h)
        t_down, sigma_up = _ancestral_target(s, t, t_end, eta)
        cache: dict = {}
        if order == 2:
            x_low = yield from solver_1_step(x, s, t_down, cache)
            x_high = yield from solver_2_step(x, s, t_down, cache)
        else:
            x_low = yield from solver_2_step(x, s, t_down, cache, r1=1 / 3)
            x_high = yield from solver_3_step(x, s, t_down, cache)
        if pid.propose_step(_error(x_low, x_high, x_prev, settings["rtol"], settings["atol"])):
            x_prev = x_low
            x = x_high + sigma_up * s_noise * context.noise(_sigma(s), _sigma(t))
            s = t
    return x


def _error(x_low, x_high, x_prev, rtol: float, atol: float) -> float:
    """The RMS of the low/high difference over a mixed tolerance, over the whole batch as k-diffusion takes it."""
    delta = (rtol * torch.maximum(x_low.abs(), x_prev.abs())).clamp(min=atol)
    return float(torch.linalg.norm((x_low - x_high) / delta) / x_low.numel() ** 0.5)

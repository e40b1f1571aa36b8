"""UniPC (arXiv 2302.04867) as ComfyUI runs it: multistep predictor-corrector in data prediction, B(h) = h or e^h - 1.

Written from ComfyUI's comfy/extra_samplers/uni_pc.py (sample_unipc). ComfyUI converts to variance-
preserving coordinates by √(1+σ²) and back; every step is linear in x, so the same steps are taken
here directly in σ (λ = -log σ, α = 1), which is the same sampler. It has no flow form: ComfyUI runs
it on flow models unchanged. Deterministic; one model call per step; order min(3, steps - 1), lowered
on the last steps; the final σ of 0 is replaced by 0.001 (the result is the sample at σ = 0.001), and
one step returns its input only rescaled, as ComfyUI's does. KSampler discards the penultimate σ for it.
"""

from __future__ import annotations

import math

import torch

from diffusers_tui.engine.sampling.sigma.context import SamplerContext

#: Where ComfyUI stops instead of σ = 0.
FINAL_SIGMA = 0.001


def uni_pc(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """UniPC with B(h) = h (variant bh1)."""
    return (yield from uni_pc_steps(x, sigmas, "bh1"))


def uni_pc_bh2(x: torch.Tensor, sigmas: list[float], context: SamplerContext):
    """UniPC with B(h) = e^h - 1 (variant bh2)."""
    return (yield from uni_pc_steps(x, sigmas, "bh2"))


def uni_pc_steps(x, sigmas: list[float], variant: str):
    """UniPC over a σ list; a final σ of 0 becomes 0.001, and the sample there is returned."""
    if len(sigmas) <= 1:
        return x
    times = list(sigmas[:-1]) + [FINAL_SIGMA if sigmas[-1] == 0 else sigmas[-1]]
    steps = len(times) - 1
    order = min(3, steps - 1)
    # The history: the σ of each kept estimate and the estimate, oldest first, at most `order` of each.
    past_sigmas = [times[0]]
    estimates = [(yield x, times[0])]
    if steps == 1:
        # ComfyUI takes no step then (order 0): its variance-preserving x, unchanged, is read back at the
        # final σ, which in σ space is x rescaled by √(1+σ_end²)/√(1+σ_0²).
        return x * math.sqrt((1 + times[-1] ** 2) / (1 + times[0] ** 2))
    for step_index in range(1, steps):
        if step_index < order:
            # Warm-up: the first steps at the order the history allows.
            x, estimate = yield from _update(x, past_sigmas, estimates, times[step_index], step_index, variant, True)
            past_sigmas.append(times[step_index])
            estimates.append(estimate)
            continue
        final = [steps] if step_index == steps - 1 else []
        for step in [step_index] + final:
            step_order = min(order, steps + 1 - step)  # lower order on the last steps
            corrector = step != steps  # no model call after the last step
            x, estimate = yield from _update(x, past_sigmas, estimates, times[step], step_order, variant, corrector)
            past_sigmas = (past_sigmas + [times[step]])[-order:]
            if corrector:
                estimates = (estimates + [estimate])[-order:]
    return x


def _update(x, past_sigmas, estimates, sigma_t: float, order: int, variant: str, corrector: bool):
    """One UniPC step from the newest kept σ to σ_t: the predictor, then (if corrector) the model at the
    predicted point and the corrected x. Returns (x, the model's estimate at the predicted point or None)."""
    sigma_0, estimate_0 = past_sigmas[-1], estimates[-1]
    h = math.log(sigma_0) - math.log(sigma_t)  # λ_t - λ_0 with λ = -log σ
    ratios = [(math.log(sigma_0) - math.log(past_sigmas[-(k + 1)])) / h for k in range(1, order)]
    differences = [(estimates[-(k + 1)] - estimate_0) / r for k, r in zip(range(1, order), ratios)]
    matrix, rhs, b_h = _order_conditions(ratios + [1.0], -h, order, variant)
    # The exponential (DPM-Solver++ first-order) part, shared by predictor and corrector.
    base = (sigma_t / sigma_0) * x - math.expm1(-h) * estimate_0
    predicted = base
    if differences:
        rhos_p = [0.5] if order == 2 else _solve(matrix[:-1, :-1], rhs[:-1])
        predicted = base - b_h * _weighted(differences, rhos_p)
    if not corrector:
        return predicted, None
    estimate_t = yield predicted, sigma_t
    rhos_c = [0.5] if order == 1 else _solve(matrix, rhs)
    correction = _weighted(differences, rhos_c[:-1]) if differences else 0.0
    return base - b_h * (correction + rhos_c[-1] * (estimate_t - estimate_0)), estimate_t


def _order_conditions(ratios: list[float], hh: float, order: int, variant: str):
    """UniPC's linear system R·ρ = b for the weights ρ, with R_ik = r_k^(i-1) and b_i = i!·h·φ_(i+1)(h)/B(h)
    (h·φ_k by the recursion φ_(k+1) = (φ_k - 1/k!)/h), and B(h)."""
    b_h = hh if variant == "bh1" else math.expm1(hh)
    h_phi = math.expm1(hh) / hh - 1
    factorial = 1
    rows, rhs = [], []
    for i in range(1, order + 1):
        rows.append([r ** (i - 1) for r in ratios])
        rhs.append(h_phi * factorial / b_h)
        factorial *= i + 1
        h_phi = h_phi / hh - 1 / factorial
    return torch.tensor(rows, dtype=torch.float64), torch.tensor(rhs, dtype=torch.float64), b_h


def _solve(matrix: torch.Tensor, rhs: torch.Tensor) -> list[float]:
    return [float(value) for value in torch.linalg.solve(matrix, rhs)]


def _weighted(tensors, weights) -> torch.Tensor:
    return sum(w * t for w, t in zip(weights, tensors))

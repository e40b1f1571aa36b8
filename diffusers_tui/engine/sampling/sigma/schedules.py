"""Named σ schedules of A1111 and ComfyUI: (ModelSigmas, steps) -> the σ list that tool samples along.

Each function returns float32 on the CPU, descending, built as its tool builds it: most end in an
appended 0 after steps + 1 values, but not all (A1111's KL Optimal stops at σ_min, ComfyUI's Laplace
node gives `steps` values ending at σ_min, DDIM can give an extra step, ComfyUI's beta drops repeats).
Where the tools give one name different lists there is one function per tool (a1111_* / comfy_*).

A1111 reads the model through k-diffusion's DiscreteSchedule (log-σ interpolation over the training
table, for SD3's flow table too); ComfyUI through its model_sampling (nearest training timestep for
ε/v-models, t = σ·multiplier and σ(t) = shift(t / multiplier) for flow models). ModelSigmas holds both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from .model_sigmas import ModelSigmas
from .schedule_tables import A1111_AYS_SIGMAS, COMFY_AYS_SIGMAS, GITS_SIGMAS

#: ComfyUI's Polyexponential and Laplace nodes take no model: their σ inputs default to SD 1.5's range.
COMFY_NODE_SIGMA_MAX = 14.614642
COMFY_NODE_SIGMA_MIN = 0.0291675


def _out(values) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float32)


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas.float(), sigmas.new_zeros(1, dtype=torch.float32)])


def _range(model: ModelSigmas, sigma_min: float | None, sigma_max: float | None) -> tuple[float, float]:
    # Both tools hand a schedule the model's own σ range; A1111's "Schedule min/max sigma" settings
    # (0 = the model's) and ComfyUI's nodes can pass others.
    low = model.sigma_min if sigma_min is None else float(sigma_min)
    high = model.sigma_max if sigma_max is None else float(sigma_max)
    return low, high


def _table(model: ModelSigmas) -> ModelSigmas:
    """The model as k-diffusion's DiscreteSchedule sees it: timestep = index into the σ table, log-σ
    interpolated. A1111 reads flow (SD3) tables this way too, not by the shift formula."""
    return replace(model, flow=False) if model.flow else model


def _sigmas_at(model: ModelSigmas, timesteps: torch.Tensor) -> list[float]:
    return [model.sigma(float(t)) for t in timesteps]


# --- The same in both tools -------------------------------------------------------------------------


def karras(model: ModelSigmas, steps: int, *, sigma_min: float | None = None,
           sigma_max: float | None = None, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022): evenly spaced in σ^(1/ρ) from σ_max to σ_min, then 0 (k-diffusion's
    get_sigmas_karras; both tools pass the model's σ range and ρ = 7)."""
    low, high = _range(model, sigma_min, sigma_max)
    ramp = torch.linspace(0, 1, steps)
    inv_low, inv_high = low ** (1 / rho), high ** (1 / rho)
    return _append_zero((inv_high + ramp * (inv_low - inv_high)) ** rho)


def exponential(model: ModelSigmas, steps: int, *, sigma_min: float | None = None,
                sigma_max: float | None = None) -> torch.Tensor:
    """Evenly spaced in log σ from σ_max to σ_min, then 0 (k-diffusion's get_sigmas_exponential)."""
    low, high = _range(model, sigma_min, sigma_max)
    return _append_zero(torch.linspace(math.log(high), math.log(low), steps).exp())


def simple(model: ModelSigmas, steps: int) -> torch.Tensor:
    """Every (len/steps)-th training σ from the top of the table, then 0 (the same code in both tools)."""
    table = model.sigmas
    stride = len(table) / steps
    return _out([table[-(1 + int(i * stride))] for i in range(steps)] + [0.0])


# --- A1111 1.10 (modules/sd_schedulers.py) ---------------------------------------------------------


def a1111_uniform(model: ModelSigmas, steps: int) -> torch.Tensor:
    """A1111 "Uniform" = DiscreteSchedule.get_sigmas(n): σ(t) at n timesteps evenly from the last
    training step to 0, then 0. (It is also what "Automatic" gives a sampler without a scheduler.)"""
    table = _table(model)
    return _out(_sigmas_at(table, torch.linspace(len(model.sigmas) - 1, 0, steps)) + [0.0])


def a1111_normal(model: ModelSigmas, steps: int, *, sigma_min: float | None = None,
                 sigma_max: float | None = None) -> torch.Tensor:
    """A1111 "Normal": σ(t) at n timesteps evenly from t(σ_max) to t(σ_min), t interpolated, then 0.
    With the model's own range that is the same list as "Uniform"."""
    table, (low, high) = _table(model), _range(model, sigma_min, sigma_max)
    timesteps = torch.linspace(table.timestep(high), table.timestep(low), steps)
    return _out(_sigmas_at(table, timesteps) + [0.0])


def a1111_sgm_uniform(model: ModelSigmas, steps: int, *, sigma_min: float | None = None,
                      sigma_max: float | None = None) -> torch.Tensor:
    """A1111 "SGM Uniform": n + 1 timesteps from t(σ_max) to t(σ_min), the last dropped (so it never
    samples at σ_min), σ(t) of the rest, then 0."""
    table, (low, high) = _table(model), _range(model, sigma_min, sigma_max)
    timesteps = torch.linspace(table.timestep(high), table.timestep(low), steps + 1)[:-1]
    return _out(_sigmas_at(table, timesteps) + [0.0])


def a1111_polyexponential(model: ModelSigmas, steps: int, *, sigma_min: float | None = None,
                          sigma_max: float | None = None, rho: float = 1.0) -> torch.Tensor:
    """k-diffusion's get_sigmas_polyexponential over the model's σ range; A1111's default ρ is 1,
    which makes it the exponential schedule."""
    return _polyexponential(steps, *_range(model, sigma_min, sigma_max), rho)


def a1111_kl_optimal(model: ModelSigmas, steps: int, *, sigma_min: float | None = None,
                     sigma_max: float | None = None) -> torch.Tensor:
    """A1111 "KL Optimal" (arXiv 2404.14507): n + 1 σ evenly spaced in arctan σ from σ_max to σ_min.
    No 0 is appended: A1111 ends KL Optimal at σ_min, ComfyUI at 0."""
    low, high = _range(model, sigma_min, sigma_max)
    alpha_low, alpha_high = torch.atan(torch.tensor(low)), torch.atan(torch.tensor(high))
    fraction = torch.arange(steps + 1) / steps
    return torch.tan(fraction * alpha_low + (1.0 - fraction) * alpha_high).float()


def a1111_align_your_steps(model: ModelSigmas, steps: int, *, model_type: str = "SD1") -> torch.Tensor:
    """A1111 "Align Your Steps": NVIDIA's 11-σ table (3 decimals, "SDXL" for SDXL models) resampled
    log-linearly to n σ, then 0; the model's range is not read. A1111 takes the table as it is only
    at n = 11, so its 10-step list is a resampling, not the published 10-step schedule."""
    table = A1111_AYS_SIGMAS[model_type]
    sigmas = list(table) if steps == len(table) else list(_loglinear(table, steps))
    return _out(sigmas + [0.0])


def a1111_ddim(model: ModelSigmas, steps: int) -> torch.Tensor:
    """A1111 "DDIM": training σ at indices 1, 1 + s, 1 + 2s, ... (s = len // n), top first, then 0.
    Where n does not divide the table that can be more than n σ (30 steps on 1000 give 31)."""
    stride = max(len(model.sigmas) // steps, 1)
    return _out(model.sigmas[1::stride].tolist()[::-1] + [0.0])


def a1111_beta(model: ModelSigmas, steps: int, *, alpha: float = 0.6, beta: float = 0.6,
               sigma_min: float | None = None, sigma_max: float | None = None) -> torch.Tensor:
    """A1111 "Beta" (arXiv 2407.12173, its settings default α = β = 0.6): the Beta quantile of n points
    from 1 to 0 placed linearly between σ_max and σ_min, then 0. ComfyUI's beta picks training
    timesteps instead, so the two lists differ."""
    from scipy import stats

    low, high = _range(model, sigma_min, sigma_max)
    quantiles = stats.beta.ppf(1 - np.linspace(0, 1, steps), alpha, beta)
    return _out(list(low + quantiles * (high - low)) + [0.0])


# --- ComfyUI (comfy/samplers.py SCHEDULER_HANDLERS) ------------------------------------------------


def comfy_normal(model: ModelSigmas, steps: int) -> torch.Tensor:
    """ComfyUI "normal": σ(t) at n timesteps evenly from t(σ_max) to t(σ_min), t the nearest training
    step (flow: σ·multiplier), then 0 — except where σ at the end is already 0, where ComfyUI takes
    n + 1 timesteps and appends nothing."""
    start = model.timestep(model.sigma_max, nearest=True)
    end = model.timestep(model.sigma_min, nearest=True)
    ends_at_zero = math.isclose(model.sigma(end), 0.0, abs_tol=1e-5)
    sigmas = _sigmas_at(model, torch.linspace(start, end, steps + 1 if ends_at_zero else steps))
    return _out(sigmas if ends_at_zero else sigmas + [0.0])


def comfy_sgm_uniform(model: ModelSigmas, steps: int) -> torch.Tensor:
    """ComfyUI "sgm_uniform": as "normal" but n + 1 timesteps with the last dropped, then 0. Same list
    as A1111's for ε/v-models; for flow models ComfyUI's t = σ·1000 runs to σ_min·1000 where A1111's
    table index runs to 0, so they differ there."""
    start = model.timestep(model.sigma_max, nearest=True)
    end = model.timestep(model.sigma_min, nearest=True)
    return _out(_sigmas_at(model, torch.linspace(start, end, steps + 1)[:-1]) + [0.0])


def comfy_ddim_uniform(model: ModelSigmas, steps: int) -> torch.Tensor:
    """ComfyUI "ddim_uniform": A1111's DDIM list, except where the table's σ at index 1 is already 0:
    then it strides for n + 1 and appends nothing."""
    if not math.isclose(float(model.sigmas[1]), 0.0, abs_tol=1e-5):
        return a1111_ddim(model, steps)
    stride = max(len(model.sigmas) // (steps + 1), 1)
    return _out(model.sigmas[1::stride].tolist()[::-1])


def comfy_beta(model: ModelSigmas, steps: int, *, alpha: float = 0.6, beta: float = 0.6) -> torch.Tensor:
    """ComfyUI "beta" (and BetaSamplingScheduler): the Beta quantile of n points from 1 down (1/n
    short of 0) rounded to a training timestep, that step's σ; a timestep equal to the one before is
    dropped (so many steps can give fewer σ), then 0."""
    from scipy import stats

    last = len(model.sigmas) - 1
    timesteps = np.rint(stats.beta.ppf(1 - np.linspace(0, 1, steps, endpoint=False), alpha, beta) * last)
    kept = [t for i, t in enumerate(timesteps) if i == 0 or t != timesteps[i - 1]]
    return _out([model.sigmas[int(t)] for t in kept] + [0.0])


def comfy_linear_quadratic(model: ModelSigmas, steps: int, *, threshold_noise: float = 0.025,
                           linear_steps: int | None = None) -> torch.Tensor:
    """ComfyUI "linear_quadratic" (Mochi's schedule, genmoai infer.py): σ_max·(1 - s) where s rises
    linearly to threshold_noise over the first linear_steps (default n // 2), then quadratically to 1."""
    if steps == 1:
        rising = [0.0, 1.0]
    else:
        linear = steps // 2 if linear_steps is None else linear_steps
        quadratic = steps - linear
        shortfall = linear - threshold_noise * steps
        a = shortfall / (linear * quadratic ** 2)
        b = threshold_noise / linear - 2 * shortfall / quadratic ** 2
        c = a * linear ** 2
        rising = ([i * threshold_noise / linear for i in range(linear)]
                  + [a * i * i + b * i + c for i in range(linear, steps)] + [1.0])
    return _out([1.0 - s for s in rising]) * model.sigma_max


def comfy_kl_optimal(model: ModelSigmas, steps: int) -> torch.Tensor:
    """ComfyUI "kl_optimal": n σ evenly spaced in arctan σ from σ_max to σ_min, then 0 (A1111's stops
    at σ_min after n + 1). At n = 1 ComfyUI divides 0 by 0 (a NaN list); this gives [σ_max, 0]."""
    fraction = torch.arange(steps, dtype=torch.float32) / max(steps - 1, 1)
    angles = fraction * math.atan(model.sigma_min) + (1 - fraction) * math.atan(model.sigma_max)
    return _append_zero(angles.tan())


# --- ComfyUI schedule nodes (comfy_extras) ---------------------------------------------------------


def comfy_align_your_steps(model: ModelSigmas, steps: int, *, model_type: str = "SD1",
                           denoise: float = 1.0) -> torch.Tensor:
    """AlignYourStepsScheduler: NVIDIA's 10-step table (SD1 / SDXL / SVD) as published at 10 steps,
    else resampled log-linearly to n + 1 σ; its last σ (the model's σ_min) is replaced by 0."""
    table = COMFY_AYS_SIGMAS[model_type]
    sigmas = list(table) if steps + 1 == len(table) else list(_loglinear(table, steps + 1))
    return _comfy_node_tail(sigmas, steps, denoise)


def comfy_gits(model: ModelSigmas, steps: int, *, coeff: float = 1.20, denoise: float = 1.0) -> torch.Tensor:
    """GITSScheduler: the published GITS row for (coeff, n) up to 20 steps, beyond that the 20-step row
    resampled log-linearly to n + 1 σ; its last σ is replaced by 0. The node takes 2 steps or more."""
    rows = GITS_SIGMAS.get(round(coeff, 2))
    if rows is None or steps < 2:
        raise ValueError(f"GITSScheduler has no table for coeff {coeff} and {steps} steps")
    sigmas = list(rows[steps - 2]) if steps <= 20 else list(_loglinear(rows[-1], steps + 1))
    return _comfy_node_tail(sigmas, steps, denoise)


def comfy_laplace(model: ModelSigmas, steps: int, *, sigma_max: float = COMFY_NODE_SIGMA_MAX,
                  sigma_min: float = COMFY_NODE_SIGMA_MIN, mu: float = 0.0, beta: float = 0.5) -> torch.Tensor:
    """LaplaceScheduler (get_sigmas_laplace, Tiankai et al. 2024): log σ = μ - β·sgn(½ - x)·ln(1 - 2|½ - x|)
    over n points x in [0, 1], clamped to [σ_min, σ_max]. No 0 is appended: n σ ending at σ_min."""
    x = torch.linspace(0, 1, steps)
    log_sigma = mu - beta * torch.sign(0.5 - x) * torch.log(1 - 2 * torch.abs(0.5 - x) + 1e-5)
    return torch.exp(log_sigma).clamp(min=sigma_min, max=sigma_max)


def comfy_polyexponential(model: ModelSigmas, steps: int, *, sigma_max: float = COMFY_NODE_SIGMA_MAX,
                          sigma_min: float = COMFY_NODE_SIGMA_MIN, rho: float = 1.0) -> torch.Tensor:
    """PolyexponentialScheduler: get_sigmas_polyexponential over the node's σ inputs (not the model's)."""
    return _polyexponential(steps, sigma_min, sigma_max, rho)


def comfy_vp(model: ModelSigmas, steps: int, *, beta_d: float = 19.9, beta_min: float = 0.1,
             eps_s: float = 0.001) -> torch.Tensor:
    """VPScheduler (get_sigmas_vp): the continuous VP SDE's σ(t) = sqrt(exp(β_d t²/2 + β_min t) - 1) at
    n times from 1 to eps_s, then 0. It reads no model."""
    t = torch.linspace(1, eps_s, steps)
    return _append_zero(torch.special.expm1(beta_d * t ** 2 / 2 + beta_min * t).sqrt())


def comfy_sd_turbo(model: ModelSigmas, steps: int, *, denoise: float = 1.0) -> torch.Tensor:
    """SDTurboScheduler: σ at training timesteps 999, 899, ... 99, starting 10·(1 - denoise) entries
    in, n of them (the node allows 1 to 10), then 0."""
    start = 10 - int(10 * denoise)
    timesteps = [999 - 100 * i for i in range(10)][start:start + steps]
    return _out([model.sigma(t) for t in timesteps] + [0.0])


# --- shared pieces ---------------------------------------------------------------------------------


def _polyexponential(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """k-diffusion's get_sigmas_polyexponential: log σ falls from log σ_max to log σ_min along
    ramp^ρ, ramp from 1 to 0; then 0."""
    ramp = torch.linspace(1, 0, steps) ** rho
    log_low = math.log(sigma_min)
    return _append_zero(torch.exp(ramp * (math.log(sigma_max) - log_low) + log_low))


def _loglinear(table, count: int) -> np.ndarray:
    """NVIDIA's loglinear_interp (both tools): a descending σ list resampled to `count` points evenly
    along its index, linearly in log σ."""
    ascending_logs = np.log(np.asarray(table, dtype=np.float64)[::-1])
    resampled = np.interp(np.linspace(0, 1, count), np.linspace(0, 1, len(table)), ascending_logs)
    return np.exp(resampled)[::-1]


def _comfy_node_tail(sigmas: list[float], steps: int, denoise: float) -> torch.Tensor:
    # AYS and GITS nodes: denoise keeps the last round(n·denoise) steps of the n-step list, and the
    # final σ (the model's σ_min in the tables) becomes 0.
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float32)
    kept = steps if denoise >= 1.0 else round(steps * denoise)
    tail = sigmas[-(kept + 1):]
    tail[-1] = 0.0
    return _out(tail)


# --- the catalogue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """One named schedule: the tool that offers it, the name each tool shows, and its function."""

    tool: str  # "A1111", "ComfyUI" or "both"
    names: dict[str, str] = field(hash=False)  # tool -> display name, spelled as that tool spells it
    function: Callable[..., torch.Tensor]
    #: A ComfyUI custom-sampling node (sampling/custom_sampling/schedulers), not a KSampler scheduler.
    node: bool = False


def _a1111(name: str, function) -> ScheduleSpec:
    return ScheduleSpec("A1111", {"A1111": name}, function)


def _comfy(name: str, function, node: bool = False) -> ScheduleSpec:
    return ScheduleSpec("ComfyUI", {"ComfyUI": name}, function, node)


SCHEDULES: dict[str, ScheduleSpec] = {
    "karras": ScheduleSpec("both", {"A1111": "Karras", "ComfyUI": "karras"}, karras),
    "exponential": ScheduleSpec("both", {"A1111": "Exponential", "ComfyUI": "exponential"}, exponential),
    "simple": ScheduleSpec("both", {"A1111": "Simple", "ComfyUI": "simple"}, simple),
    "a1111_uniform": _a1111("Uniform", a1111_uniform),
    "a1111_polyexponential": _a1111("Polyexponential", a1111_polyexponential),
    "a1111_sgm_uniform": _a1111("SGM Uniform", a1111_sgm_uniform),
    "a1111_kl_optimal": _a1111("KL Optimal", a1111_kl_optimal),
    "a1111_align_your_steps": _a1111("Align Your Steps", a1111_align_your_steps),
    "a1111_normal": _a1111("Normal", a1111_normal),
    "a1111_ddim": _a1111("DDIM", a1111_ddim),
    "a1111_beta": _a1111("Beta", a1111_beta),
    "comfy_normal": _comfy("normal", comfy_normal),
    "comfy_sgm_uniform": _comfy("sgm_uniform", comfy_sgm_uniform),
    "comfy_ddim_uniform": _comfy("ddim_uniform", comfy_ddim_uniform),
    "comfy_beta": _comfy("beta", comfy_beta),
    "comfy_linear_quadratic": _comfy("linear_quadratic", comfy_linear_quadratic),
    "comfy_kl_optimal": _comfy("kl_optimal", comfy_kl_optimal),
    "comfy_align_your_steps": _comfy("AlignYourStepsScheduler", comfy_align_your_steps, node=True),
    "comfy_gits": _comfy("GITSScheduler", comfy_gits, node=True),
    "comfy_laplace": _comfy("LaplaceScheduler", comfy_laplace, node=True),
    "comfy_polyexponential": _comfy("PolyexponentialScheduler", comfy_polyexponential, node=True),
    "comfy_vp": _comfy("VPScheduler", comfy_vp, node=True),
    "comfy_sd_turbo": _comfy("SDTurboScheduler", comfy_sd_turbo, node=True),
}


def find_schedule(tool: str, name: str) -> ScheduleSpec | None:
    """The schedule a tool shows under `name` ("A1111", "Karras"), or None."""
    return next((spec for spec in SCHEDULES.values() if spec.names.get(tool) == name), None)

"""img2img's part of a schedule: the σ a denoising strength runs, and the σ its init latent is noised to.

Each tool has its own rule, and each is kept:

- A1111 (sd_samplers_common.setup_img2img_steps, img2img_fix_steps off, its default): of the
  `steps`-step schedule, the last t_enc + 1 steps, t_enc = int(min(strength, 0.999) · steps); the
  init latent gets noise at the first σ kept (x + σ·ε; x·(1-σ) + σ·ε on flow models). So strength 0
  is one step at the smallest σ, and strength 1 the whole schedule from x + σ_max·ε.
- A1111's hires pass (and img2img_fix_steps on): exactly `steps` steps, from a schedule of
  int(steps / min(strength, 0.999)) steps.
- A1111's DDIM and PLMS (sd_samplers_timesteps): of their own timesteps t₀ < t₁ < ..., the first
  t_enc, stepped from the top; the latent is noised to t_{t_enc} (variance-preserving), one above
  the first call's timestep, as A1111 does it.
- ComfyUI (KSampler.set_steps): the last steps + 1 σ of an int(steps / denoise)-step schedule;
  denoise 0 runs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from diffusers_tui.engine.sampling.sigma import catalogue


@dataclass(frozen=True)
class PartialSchedule:
    """What an img2img run steps, and how its start is made from the init latent x₀ and the noise ε."""

    #: The σ the sampler runs on, top first.
    sigmas: list[float]
    #: The start is x₀·latent_scale + ε·noise_scale (in the sampler's σ-space x).
    latent_scale: float
    noise_scale: float
    #: The σ list whose range an SDE sampler's Brownian tree spans (A1111: the whole schedule).
    tree_sigmas: list[float]
    #: The σ range DPM fast and adaptive integrate over (A1111 passes the kept schedule's), or None.
    solver_range: tuple[float, float] | None = None


class NoStepsError(ValueError):
    """The strength keeps no model call of the schedule."""


def partial_schedule(named: catalogue.NamedSampler, schedule: str, model, steps: int, strength: float,
                     flow: bool = False, exact_steps: bool = False) -> PartialSchedule:
    """The part of `named`'s schedule that `strength` (A1111's denoising strength, ComfyUI's denoise) runs.
    `exact_steps`: A1111's hires-pass rule (img2img_fix_steps): `steps` steps whatever the strength."""
    if named.tool == catalogue.COMFYUI:
        return _comfyui(named, schedule, model, steps, strength, flow)
    if named.own_schedule and named.variance_preserving and "unipc" in named.own_schedule:
        raise NoStepsError(f"A1111's {named.name} img2img (its own time range) is not run here; choose another "
                           "sampler for an init image")
    if named.own_schedule and named.variance_preserving:
        return _a1111_timesteps(named, model, steps, strength, exact_steps)
    if exact_steps:
        scheduled = int(steps / min(strength, 0.999)) if strength > 0 else 0
        if scheduled < 1:
            raise NoStepsError("a denoising strength of 0 runs no step in a hires pass")
        t_enc = steps - 1
    else:
        scheduled, t_enc = steps, int(min(strength, 0.999) * steps)
    full = catalogue.sigmas_for(named, schedule, model, scheduled)
    kept = full[scheduled - t_enc - 1:]
    top = kept[0]
    return PartialSchedule(kept, *_start_scales(top, flow), tree_sigmas=full,
                           solver_range=(min(s for s in kept if s > 0), top))


def _a1111_timesteps(named, model, steps: int, strength: float, exact_steps: bool) -> PartialSchedule:
    from diffusers_tui.engine.sampling.sigma.samplers_a1111 import a1111_timesteps

    if exact_steps:
        steps, t_enc = (int(steps / min(strength, 0.999)) if strength > 0 else 0), steps - 1
        if steps < 1:
            raise NoStepsError("a denoising strength of 0 runs no step in a hires pass")
    else:
        t_enc = int(min(strength, 0.999) * steps)
    ascending = a1111_timesteps(len(model.sigmas), steps)
    kept = [float(model.sigmas[t]) for t in reversed(ascending[:t_enc])]
    if len(kept) < 2:
        raise NoStepsError(f"A1111's {named.name} makes no model call at this strength ({t_enc} of its "
                           f"{steps} timesteps kept, and it needs 2); raise the strength or the steps")
    # A1111 noises the latent to timestep t_{t_enc} in variance-preserving x, then steps it as if at the
    # first kept timestep: in σ space that is √(ᾱ_enc/ᾱ_top)·(x₀ + σ_enc·ε).
    sigma_enc, top = float(model.sigmas[ascending[t_enc]]), kept[0]
    factor = math.sqrt((1 + top**2) / (1 + sigma_enc**2))
    return PartialSchedule(kept, factor, factor * sigma_enc, tree_sigmas=kept)


def _comfyui(named, schedule: str, model, steps: int, denoise: float, flow: bool) -> PartialSchedule:
    if denoise <= 0:
        raise NoStepsError("ComfyUI at denoise 0 samples nothing (it returns the latent as it is); raise the "
                           "strength above 0")
    if denoise > 0.9999:
        kept = catalogue.sigmas_for(named, schedule, model, steps)
    else:
        kept = catalogue.sigmas_for(named, schedule, model, int(steps / denoise))[-(steps + 1):]
    latent_scale, noise_scale = _start_scales(kept[0], flow)
    top_of_model = kept[0] >= model.sigma_max or math.isclose(kept[0], model.sigma_max, rel_tol=1e-5)
    if not flow and top_of_model:  # ComfyUI's max_denoise: ε·√(1+σ²), as its text-to-image start
        noise_scale = math.sqrt(1 + kept[0] ** 2)
    return PartialSchedule(kept, latent_scale, noise_scale, tree_sigmas=kept)


def _start_scales(sigma: float, flow: bool) -> tuple[float, float]:
    """x₀ and ε's factors for a start at σ: x₀ + σ·ε, or on flow models x₀·(1-σ) + σ·ε."""
    return (1.0 - sigma, sigma) if flow else (1.0, sigma)

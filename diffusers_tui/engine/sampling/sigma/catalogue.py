"""Every engine sampler under the name its tool gives it, with that tool's defaults, and the noise conventions.

A1111's names come from its sd_samplers_kdiffusion table (1.10): the k-diffusion function,
Automatic schedule, whether the next-to-last σ is dropped, eta, Brownian noise. ComfyUI's ids
come from KSAMPLER_NAMES in comfy/samplers.py (plus ddim, uni_pc, uni_pc_bh2), with the σ lists
its KSampler builds. A sampler's function is named as "module:function" and imported when
first used, so listing names imports no torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

A1111, COMFYUI = "A1111", "ComfyUI"


@dataclass(frozen=True)
class NamedSampler:
    """One sampler as one tool names it: what runs, and that tool's defaults for it."""

    tool: str
    name: str
    #: "module:function" in this package.
    function_ref: str
    #: Model calls per step (None: adaptive, the sampler decides as it goes).
    calls_per_step: int | None = 1
    stochastic: bool = False
    #: Its noise is a Brownian tree's increments (the SDE samplers), not fresh draws.
    brownian: bool = False
    #: A1111's eta for it (opts.eta_ancestral for every function that takes eta); ComfyUI's default.
    eta: float = 1.0
    #: The schedule is built one step longer and its next-to-last σ dropped.
    discard_penultimate: bool = False
    #: What "Automatic" means: A1111's per-sampler default schedule (ComfyUI has no Automatic:
    #: its KSampler's default, normal, stands in).
    automatic: str = "Uniform"
    #: Runs on flow-matching models (as ComfyUI runs it there).
    flow: bool = True
    #: Needs the unconditional prediction inside the step (CFG++).
    cfgpp: bool = False
    #: Takes the model's σ range and the step count rather than a σ list (DPM fast, DPM adaptive).
    range_only: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: Its model calls depend on the picture, not only on the σ list (DPM adaptive's error control).
    adapts_to_x: bool = False
    #: "module:function(model, steps)": the σ list it always runs on, whatever the schedule type (A1111's
    #: DDIM, PLMS and UniPC keep their own timesteps).
    own_schedule: str = ""
    #: "module:function(model, σ)": the model's timestep for a call at σ, where the tool does not read it
    #: off the σ table the usual way (A1111's LCM quantizes it, its UniPC interpolates log α).
    timestep_rule: str = ""
    #: "module:function(model)": the σ table its schedules and timesteps read (A1111's LCM: every 20th σ).
    table: str = ""
    #: Runs in A1111's variance-preserving space: starts from unit noise, and its result is √ᾱ·x.
    variance_preserving: bool = False

    @property
    def key(self) -> str:
        return f"{self.tool}:{self.name}"

    @property
    def function(self):
        return _imported(self.function_ref)

    def model_table(self, model):
        """The σ table this sampler reads, from the model's."""
        return _imported(self.table)(model) if self.table else model

    def timestep(self, model, sigma: float, nearest: bool) -> float:
        """The model's timestep for a call at σ (`nearest`: the convention's rule where the tool has none)."""
        return _imported(self.timestep_rule)(model, sigma) if self.timestep_rule else model.timestep(sigma, nearest)


def _imported(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(f"diffusers_tui.engine.sampling.sigma.{module}"), name)


def _a1111(name, ref, *, calls=1, automatic="Uniform", **kwargs) -> NamedSampler:
    return NamedSampler(A1111, name, ref, calls, automatic=automatic, **kwargs)


def _comfy(name, ref, *, calls=1, **kwargs) -> NamedSampler:
    # ComfyUI's KSampler passes no eta: the stochastic samplers' own default is 1, the others' 0.
    kwargs.setdefault("eta", 1.0 if kwargs.get("stochastic") else 0.0)
    return NamedSampler(COMFYUI, name, ref, calls, automatic="normal", **kwargs)


_K = "samplers_kdiffusion"
_A = "samplers_a1111"
#: What A1111's timestep samplers share: their own timesteps, unit starting noise, no flow form.
_A1111_TIMESTEPS = {"own_schedule": "samplers_a1111:a1111_timestep_sigmas", "variance_preserving": True,
                    "flow": False, "automatic": ""}
_SDE = "samplers_sde"
_C = "samplers_comfy"

A1111_SAMPLERS: tuple[NamedSampler, ...] = (
    _a1111("DPM++ 2M", f"{_K}:sample_dpmpp_2m", automatic="Karras"),
    _a1111("DPM++ SDE", f"{_SDE}:sample_dpmpp_sde", calls=2, automatic="Karras", stochastic=True, brownian=True),
    _a1111("DPM++ 2M SDE", f"{_SDE}:sample_dpmpp_2m_sde", automatic="Exponential", stochastic=True, brownian=True),
    _a1111("DPM++ 2M SDE Heun", f"{_SDE}:sample_dpmpp_2m_sde", automatic="Exponential", stochastic=True,
           brownian=True, options={"solver_type": "heun"}),
    _a1111("DPM++ 2S a", f"{_K}:sample_dpmpp_2s_ancestral", calls=2, automatic="Karras", stochastic=True),
    _a1111("DPM++ 3M SDE", f"{_SDE}:sample_dpmpp_3m_sde", automatic="Exponential", stochastic=True, brownian=True,
           discard_penultimate=True),
    _a1111("Euler a", f"{_K}:sample_euler_ancestral", stochastic=True),
    _a1111("Euler", f"{_K}:sample_euler"),
    _a1111("LMS", f"{_K}:sample_lms"),
    _a1111("Heun", f"{_K}:sample_heun", calls=2),
    _a1111("DPM2", f"{_K}:sample_dpm_2", calls=2, automatic="Karras", discard_penultimate=True),
    _a1111("DPM2 a", f"{_K}:sample_dpm_2_ancestral", calls=2, automatic="Karras", discard_penultimate=True,
           stochastic=True),
    _a1111("DPM fast", f"{_K}:sample_dpm_fast", calls=None, stochastic=True, range_only=True),
    _a1111("DPM adaptive", f"{_K}:sample_dpm_adaptive", calls=None, stochastic=True, range_only=True,
           adapts_to_x=True),
    _a1111("Restart", f"{_K}:sample_restart", calls=None, automatic="Karras", stochastic=True),
    # A1111's own: its timestep samplers (sd_samplers_timesteps) and LCM (sd_samplers_lcm).
    _a1111("DDIM", f"{_A}:ddim", eta=0.0, **_A1111_TIMESTEPS, timestep_rule=f"{_A}:nearest_timestep"),
    _a1111("DDIM CFG++", f"{_A}:ddim_cfgpp", eta=0.0, cfgpp=True, **_A1111_TIMESTEPS,
           timestep_rule=f"{_A}:nearest_timestep"),
    _a1111("PLMS", f"{_A}:plms", **_A1111_TIMESTEPS, timestep_rule=f"{_A}:nearest_timestep",
           description="its first step takes two model calls"),
    _a1111("UniPC", f"{_A}:unipc", **{**_A1111_TIMESTEPS, "own_schedule": f"{_A}:a1111_unipc_sigmas"},
           timestep_rule=f"{_A}:a1111_unipc_timestep", description="bh1, order 3, time-uniform"),
    _a1111("LCM", f"{_A}:lcm", stochastic=True, flow=False, table=f"{_A}:lcm_table",
           timestep_rule=f"{_A}:lcm_timestep", description="for LCM models: 50 timesteps, c_skip and c_out"),
)


#: The registry's spelling of ComfyUI's schedule-node names, as schedule keys.
_COMFY_NODE_SCHEDULES = {"align_your_steps": "comfy_align_your_steps", "gits": "comfy_gits", "laplace": "comfy_laplace",
                         "polyexponential": "comfy_polyexponential", "vp": "comfy_vp", "sd_turbo": "comfy_sd_turbo"}


def schedule_function(tool: str, name: str):
    """The σ-list function for a schedule as `tool` names it ("A1111", "Karras"; "ComfyUI", "beta")."""
    from diffusers_tui.engine.sampling.sigma import schedules

    if tool == COMFYUI and name in _COMFY_NODE_SCHEDULES:
        return schedules.SCHEDULES[_COMFY_NODE_SCHEDULES[name]].function
    spec = schedules.find_schedule(tool, name)
    if spec is None:
        raise KeyError(f"{tool} has no schedule {name!r}")
    return spec.function


def sigmas_for(named: NamedSampler, schedule: str, model, steps: int) -> list[float]:
    """The σ list `named` runs on: its tool's schedule (Automatic resolved), one longer with the
    next-to-last σ dropped where the tool does that for this sampler."""
    if named.own_schedule:
        return [float(sigma) for sigma in _imported(named.own_schedule)(model, steps)]
    name = named.automatic if schedule == "Automatic" else schedule
    function = schedule_function(named.tool, name)
    sigmas = function(model, steps + 1 if named.discard_penultimate else steps)
    values = [float(sigma) for sigma in sigmas]
    if named.discard_penultimate:
        values = values[:-2] + values[-1:]
    return values


_CF, _CM, _PP = "samplers_comfy", "samplers_multistep", "samplers_cfgpp"
_SA, _UNI = "samplers_sa_solver", "samplers_uni_pc"


def _tree(name, ref, **kwargs) -> NamedSampler:
    """A ComfyUI SDE id: Brownian noise, its tree on the CPU unless the id ends in _gpu."""
    return _comfy(name, ref, stochastic=True, brownian=True,
                  options={"tree_on_cpu": not name.endswith("_gpu"), **kwargs.pop("options", {})}, **kwargs)


#: ComfyUI's KSAMPLER_NAMES, then ddim, uni_pc and uni_pc_bh2 (comfy/samplers.py), in its order.
COMFYUI_SAMPLERS: tuple[NamedSampler, ...] = (
    _comfy("euler", f"{_K}:sample_euler"),
    _comfy("euler_cfg_pp", f"{_PP}:euler_cfg_pp", cfgpp=True),
    _comfy("euler_ancestral", f"{_K}:sample_euler_ancestral", stochastic=True),
    _comfy("euler_ancestral_cfg_pp", f"{_PP}:euler_ancestral_cfg_pp", stochastic=True, cfgpp=True),
    _comfy("heun", f"{_K}:sample_heun", calls=2),
    _comfy("heunpp2", f"{_CF}:heunpp2", calls=3),
    _comfy("exp_heun_2_x0", f"{_CF}:exp_heun_2_x0", calls=2),
    _comfy("exp_heun_2_x0_sde", f"{_CF}:exp_heun_2_x0_sde", calls=2, stochastic=True),
    _comfy("dpm_2", f"{_K}:sample_dpm_2", calls=2, discard_penultimate=True),
    _comfy("dpm_2_ancestral", f"{_K}:sample_dpm_2_ancestral", calls=2, discard_penultimate=True, stochastic=True),
    _comfy("lms", f"{_K}:sample_lms"),
    # ComfyUI calls DPM fast and adaptive without eta: their own default, 0, makes them deterministic.
    _comfy("dpm_fast", f"{_K}:sample_dpm_fast", calls=None, range_only=True),
    _comfy("dpm_adaptive", f"{_K}:sample_dpm_adaptive", calls=None, range_only=True, adapts_to_x=True),
    _comfy("dpmpp_2s_ancestral", f"{_K}:sample_dpmpp_2s_ancestral", calls=2, stochastic=True),
    _comfy("dpmpp_2s_ancestral_cfg_pp", f"{_PP}:dpmpp_2s_ancestral_cfg_pp", calls=2, stochastic=True, cfgpp=True),
    _tree("dpmpp_sde", f"{_SDE}:sample_dpmpp_sde", calls=2),
    _tree("dpmpp_sde_gpu", f"{_SDE}:sample_dpmpp_sde", calls=2),
    _comfy("dpmpp_2m", f"{_K}:sample_dpmpp_2m"),
    _comfy("dpmpp_2m_cfg_pp", f"{_PP}:dpmpp_2m_cfg_pp", cfgpp=True),
    _tree("dpmpp_2m_sde", f"{_SDE}:sample_dpmpp_2m_sde"),
    _tree("dpmpp_2m_sde_gpu", f"{_SDE}:sample_dpmpp_2m_sde"),
    _tree("dpmpp_2m_sde_heun", f"{_SDE}:sample_dpmpp_2m_sde_heun"),
    _tree("dpmpp_2m_sde_heun_gpu", f"{_SDE}:sample_dpmpp_2m_sde_heun"),
    _tree("dpmpp_3m_sde", f"{_SDE}:sample_dpmpp_3m_sde"),
    _tree("dpmpp_3m_sde_gpu", f"{_SDE}:sample_dpmpp_3m_sde"),
    _comfy("ddpm", f"{_CF}:ddpm", stochastic=True),
    _comfy("lcm", f"{_CF}:lcm", stochastic=True),
    _comfy("ipndm", f"{_CM}:ipndm"),
    _comfy("ipndm_v", f"{_CM}:ipndm_v"),
    _comfy("deis", f"{_CM}:deis"),
    _comfy("cfgpp_ud10_ab", f"{_PP}:cfgpp_ud10_ab", cfgpp=True),
    _comfy("res_multistep", f"{_CM}:res_multistep"),
    _comfy("res_multistep_cfg_pp", f"{_PP}:res_multistep_cfg_pp", cfgpp=True),
    _comfy("res_multistep_ancestral", f"{_CM}:res_multistep_ancestral", stochastic=True),
    _comfy("res_multistep_ancestral_cfg_pp", f"{_PP}:res_multistep_ancestral_cfg_pp", stochastic=True, cfgpp=True),
    _comfy("gradient_estimation", f"{_CM}:gradient_estimation"),
    _comfy("gradient_estimation_cfg_pp", f"{_PP}:gradient_estimation_cfg_pp", cfgpp=True),
    _comfy("er_sde", f"{_CF}:er_sde", stochastic=True),
    _comfy("seeds_2", f"{_CF}:seeds_2", calls=2, stochastic=True),
    _comfy("seeds_3", f"{_CF}:seeds_3", calls=3, stochastic=True),
    _comfy("sa_solver", f"{_SA}:sa_solver", stochastic=True),
    _comfy("sa_solver_pece", f"{_SA}:sa_solver_pece", calls=2, stochastic=True),
    # ComfyUI's "ddim" is k-diffusion's Euler (samplers.py: ksampler("euler", ...)), not A1111's DDIM.
    _comfy("ddim", f"{_K}:sample_euler", description="ComfyUI's ddim: Euler under another name"),
    _comfy("uni_pc", f"{_UNI}:uni_pc", discard_penultimate=True),
    _comfy("uni_pc_bh2", f"{_UNI}:uni_pc_bh2", discard_penultimate=True),
)


def sampler(key: str) -> NamedSampler:
    """The named sampler for a key ("A1111:Euler a", "ComfyUI:euler_ancestral")."""
    for entry in all_samplers():
        if entry.key == key:
            return entry
    raise KeyError(key)


def all_samplers() -> tuple[NamedSampler, ...]:
    return A1111_SAMPLERS + COMFYUI_SAMPLERS


@dataclass(frozen=True)
class Convention:
    """A tool's rules for a run's noise and for how the model is called."""

    name: str
    #: The tool whose seeding rules are followed.
    tool: str
    #: Starting noise ×√(1 + σ_max²) instead of ×σ_max for ε- and v-models (ComfyUI at full denoise).
    scales_by_sqrt: bool = False
    #: The model is called at the nearest training timestep (ComfyUI), not an interpolated one.
    nearest_timestep: bool = False
    #: A1111's RNG field: CPU, GPU or NV.
    rng: str = ""


CONVENTIONS: dict[str, Convention] = {
    "A1111 CPU": Convention("A1111 CPU", A1111, rng="CPU"),
    "A1111 GPU": Convention("A1111 GPU", A1111, rng="GPU"),
    "A1111 NV": Convention("A1111 NV", A1111, rng="NV"),
    "ComfyUI": Convention("ComfyUI", COMFYUI, scales_by_sqrt=True, nearest_timestep=True),
}


def convention(name: str) -> Convention:
    return CONVENTIONS[name]

"""The registry's entries: every sampler by the name its tool gives it, and diffusers' own classes.

Engine entries (A1111's names, ComfyUI's ids) run on the project's σ-space engine through its
stand-in scheduler, with their tool's schedule types; diffusers' classes keep their own options,
with A1111's defaults where they bear an A1111 name (see registry.py for how names resolve).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Schedule types as each tool spells them. A1111's Beta is not ComfyUI's beta (nor its KL Optimal
#: ComfyUI's kl_optimal), so a ComfyUI name is looked up exactly as ComfyUI writes it.
A1111_SCHEDULES = ("Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
                   "Align Your Steps", "Simple", "Normal", "DDIM", "Beta")
COMFYUI_SCHEDULES = ("normal", "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta",
                     "linear_quadratic", "kl_optimal", "align_your_steps", "gits", "laplace", "polyexponential", "vp")
SCHEDULES = A1111_SCHEDULES + COMFYUI_SCHEDULES
#: The class every engine entry builds: a stand-in scheduler stepping an engine sampler.
ENGINE_CLASS = "SigmaSamplerScheduler"
SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "Uniform": {"timestep_spacing": "linspace"},
    "Karras": {"use_karras_sigmas": True},
    "Exponential": {"use_exponential_sigmas": True},
    "Beta": {"use_beta_sigmas": True},
    # k-diffusion's sgm_uniform: n timesteps evenly from the top, the last step to σ=0.
    "SGM Uniform": {"timestep_spacing": "trailing"},
}
_ALL_SIGMA_SCHEDULES = ("Uniform", "Karras", "Exponential", "Beta", "SGM Uniform")
#: A1111 samplers on the k-diffusion σ schedule start at the model's largest σ, whatever the folder says.
_FULL_RANGE = {"timestep_spacing": "linspace"}
#: A1111's DDIM and PLMS timesteps: range(0, 1000, 1000 // steps) + 1, ending on ᾱ of t=0.
_A1111_TIMESTEPS = {"timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False}
#: Keys that a class default would switch on for a model whose own config never asked for them.
OFF_UNLESS_ASKED = ("clip_sample", "thresholding")


@dataclass(frozen=True)
class SchedulerEntry:
    """One sampler: display name -> diffusers class name + options, and the schedule types it offers."""

    name: str
    class_name: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Model calls per step: 2 for the second-order solvers (Heun, DPM2, DPM++ SDE).
    order: int = 1
    description: str = ""
    #: Whether A1111 has a sampler by this name (written as `Sampler:` in infotext only then).
    a1111: bool = True
    #: The schedule types this class has options for ("Automatic" always).
    schedules: tuple[str, ...] = ("Automatic",)
    #: What "Automatic" means for this sampler (A1111's per-sampler default); "" keeps the
    #: model's own spacing (DDIM and PLMS on A1111's timesteps, samplers A1111 lacks).
    automatic: str = ""
    #: Options every schedule of this entry gets (the full σ range, A1111's timesteps).
    base: dict[str, Any] = field(default_factory=dict)
    #: Where diffusers cannot match what A1111 runs: schedule type ("*" for all) -> why, and by how
    #: much (measured by benchmarks/a1111_parity.py on the demo, 20 steps, CFG 7).
    parity: dict[str, str] = field(default_factory=dict)
    #: Whose name this is and whose rules it follows: "A1111", "ComfyUI", or "diffusers" (a class's own).
    tool: str = "diffusers"
    #: Draws fresh noise as it goes (ancestral and SDE samplers).
    stochastic: bool = False
    #: Model calls per step are decided as it runs (DPM adaptive, DPM fast, Restart).
    adaptive: bool = False

    @property
    def is_engine(self) -> bool:
        """Whether this entry runs on the project's own σ-space engine (a stand-in scheduler)."""
        return self.class_name == ENGINE_CLASS

    @property
    def takes_eta(self) -> bool:
        """Whether a request's eta reaches this sampler: the engine's stochastic samplers, and DDIM (its eta)."""
        return (self.is_engine and (self.stochastic or self.options["sampler"].split(":", 1)[1].startswith("DDIM"))
                or self.class_name == "DDIMScheduler")

    @property
    def takes_s_noise(self) -> bool:
        """Whether a request's s_noise reaches this sampler: the engine's stochastic samplers."""
        return self.is_engine and self.stochastic

    @property
    def options_text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    def schedule_options(self, schedule: str) -> dict[str, Any]:
        """The diffusers options for this sampler on `schedule` (Automatic resolved)."""
        if self.is_engine:
            return {**self.options, "schedule": self.concrete(schedule)}
        return {**self.base, **SCHEDULE_OPTIONS.get(self.concrete(schedule), {}), **self.options}

    def parity_note(self, schedule: str) -> str:
        """How this sampler on `schedule` differs from A1111's ("" where it matches)."""
        return self.parity.get(schedule, self.parity.get("*", ""))

    @property
    def automatic_text(self) -> str:
        """What "Automatic" means for this sampler, in words."""
        if self.automatic:
            return self.automatic
        return "the model's shift" if self.class_name.startswith("FlowMatch") or "use_flow_sigmas" in self.options \
            else "its own timesteps"

    def concrete(self, schedule: str) -> str:
        """`schedule` with Automatic replaced by this sampler's default ("" when that is its own spacing)."""
        return self.automatic if schedule == "Automatic" else schedule


def _k(name, class_name, options=None, *, order=1, description="", schedules=_ALL_SIGMA_SCHEDULES,
       automatic="Uniform", parity=None, a1111=None, base=None):
    # A "(diffusers)" entry is diffusers' class, not A1111's sampler: its infotext says so.
    a1111 = not name.endswith("(diffusers)") if a1111 is None else a1111
    return SchedulerEntry(name, class_name, dict(options or {}), order, description, a1111,
                          ("Automatic", *schedules), automatic, dict(_FULL_RANGE if base is None else base), dict(parity or {}))


_SDE = {"algorithm_type": "sde-dpmsolver++"}

_DIFFUSERS: tuple[SchedulerEntry, ...] = (
    _k("Euler (diffusers)", "EulerDiscreteScheduler", description="first-order, deterministic"),
    _k("Euler a (diffusers)", "EulerAncestralDiscreteScheduler", description="ancestral: adds noise each step",
       schedules=("Uniform", "SGM Uniform")),
    _k("Heun (diffusers)", "HeunDiscreteScheduler", order=2, description="second-order: 2 model calls a step"),
    _k("DPM++ 2M (diffusers)", "DPMSolverMultistepScheduler", automatic="Karras",
       parity={"Uniform": "diffusers' timesteps stop one step short of t=0 (last σ 0.226, A1111's 0.029): RMSE 3.5"}),
    _k("DPM++ 2M SDE (diffusers)", "DPMSolverMultistepScheduler", _SDE, automatic="Exponential",
       parity={"*": "the same sampler on other noise: the pipeline draws Gaussian noise from the run's generator where A1111 "
                    "draws from a Brownian tree: RMSE 22-60"}),
    _k("DPM++ SDE (diffusers)", "DPMSolverSDEScheduler", order=2, automatic="Karras",
       description="k-diffusion's stochastic DPM++ SDE (Brownian-tree noise); needs torchsde",
       parity={"Uniform": "diffusers interpolates σ linearly between training timesteps, k-diffusion "
                          "log-linearly: RMSE 2.2"}),
    _k("DPM2 (diffusers)", "KDPM2DiscreteScheduler", order=2, automatic="Karras",
       parity={"*": "A1111 drops the next-to-last σ, and diffusers has no option for it: RMSE 0.7-1.2"}),
    _k("DPM2 a (diffusers)", "KDPM2AncestralDiscreteScheduler", order=2, automatic="Karras",
       parity={"*": "A1111 drops the next-to-last σ, and diffusers has no option for it: RMSE 0.5 "
                    "(Automatic, Karras) to 9.3 (Beta)"}),
    _k("LMS (diffusers)", "LMSDiscreteScheduler", description="needs scipy"),
    SchedulerEntry("DDIM (diffusers)", "DDIMScheduler", a1111=False, base=dict(_A1111_TIMESTEPS),
                   description="diffusers' DDIM on A1111's timesteps (t=951 ... 1 at 20 steps), on to t=0"),
    SchedulerEntry("PLMS (diffusers)", "PNDMScheduler", {"skip_prk_steps": True}, a1111=False,
                   base=dict(_A1111_TIMESTEPS), description="diffusers' PNDM without its Runge-Kutta warm-up"),
    _k("UniPC (diffusers)", "UniPCMultistepScheduler", schedules=(), automatic="",
       description="diffusers' UniPC (bh2, order 2)"),
    _k("DDPM", "DDPMScheduler", a1111=False, base={}, schedules=(), automatic="",
       description="the original ancestral sampler; wants many steps (A1111 has none)"),
    _k("DEIS", "DEISMultistepScheduler", a1111=False, base={}, automatic="", description="A1111 has none"),
    _k("DPM++ 2S", "DPMSolverSinglestepScheduler", a1111=False, base={}, automatic="",
       schedules=("Karras", "Exponential", "Beta"),
       description="deterministic single-step DPM-Solver++(2S); A1111 has only the ancestral 2S a"),
)

_FLOW = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
_FLOW_SCHEDULES = ("Karras", "Exponential", "Beta")

#: For flow-matching models (SD3, Flux, Sana, Chroma...), under the names ComfyUI and Forge give
#: them. Automatic is the model's own shifted schedule (ComfyUI's "simple"); the shift, dynamic
#: or fixed, comes from the model's config.
_DIFFUSERS_FLOW: tuple[SchedulerEntry, ...] = (
    SchedulerEntry("Euler (diffusers)", "FlowMatchEulerDiscreteScheduler", description="flow matching, first-order",
                   a1111=False, schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("Euler a (diffusers)", "FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True},
                   description="flow matching, fresh noise each step", a1111=False,
                   schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("Heun (diffusers)", "FlowMatchHeunDiscreteScheduler", order=2, a1111=False,
                   description="flow matching, second-order: 2 model calls a step"),
    SchedulerEntry("DPM++ 2M (diffusers)", "DPMSolverMultistepScheduler", {**_FLOW, "algorithm_type": "dpmsolver++"},
                   description="DPM-Solver++(2M) in its flow mode", a1111=False, schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("DPM++ 2M SDE (diffusers)", "DPMSolverMultistepScheduler", {**_FLOW, "algorithm_type": "sde-dpmsolver++"},
                   description="DPM-Solver++(2M) SDE in its flow mode: fresh noise each step", a1111=False,
                   schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("UniPC (diffusers)", "UniPCMultistepScheduler", dict(_FLOW), description="UniPC in its flow mode",
                   a1111=False, schedules=("Automatic", *_FLOW_SCHEDULES)),
    SchedulerEntry("LCM (diffusers)", "FlowMatchLCMScheduler", description="latent consistency sampling for flow models: "
                   "for few-step (distilled) models; re-noises each step", a1111=False,
                   schedules=("Automatic", *_FLOW_SCHEDULES)),
)



def _engine_entry(named) -> SchedulerEntry:
    """A registry entry for one engine sampler, under its tool's name and with its tool's schedule types."""
    schedules = A1111_SCHEDULES if named.tool == "A1111" else ("Automatic", *COMFYUI_SCHEDULES)
    if named.own_schedule:  # A1111's timestep samplers keep their own timesteps, whatever the type
        schedules = ("Automatic",)
    calls = named.calls_per_step or 1
    kinds = ["stochastic" if named.stochastic else "deterministic"]
    kinds += ["SDE, Brownian-tree noise"] if named.brownian else []
    kinds += ["CFG++"] if named.cfgpp else []
    kinds += ["adaptive: decides its model calls as it goes"] if named.calls_per_step is None else [
        f"{calls} model call{'s' if calls > 1 else ''} a step"]
    described = f"{named.tool}'s {named.name}: {', '.join(kinds)}"
    return SchedulerEntry(named.name, ENGINE_CLASS, {"sampler": named.key}, calls,
                          f"{described} ({named.description})" if named.description else described,
                          named.tool == "A1111", schedules, named.automatic, {}, {}, named.tool, named.stochastic,
                          named.calls_per_step is None)


def _engine_entries(flow: bool) -> tuple[SchedulerEntry, ...]:
    from diffusers_tui.engine.sampling.sigma import catalogue

    return tuple(_engine_entry(named) for named in catalogue.all_samplers() if named.flow or not flow)


REGISTRY: tuple[SchedulerEntry, ...] = (*_engine_entries(flow=False), *_DIFFUSERS)
#: For flow-matching models (SD3, Flux, Sana, Chroma...): every engine sampler that has a flow form,
#: run as ComfyUI runs it there, then diffusers' flow classes.
FLOW_REGISTRY: tuple[SchedulerEntry, ...] = (*_engine_entries(flow=True), *_DIFFUSERS_FLOW)



"""A diffusers-scheduler stand-in that steps one of the engine's samplers, so pipelines and the UNet loop run it.

A pipeline's loop asks its scheduler for a list of timesteps, calls the model at each one
and hands the output to `step`. The stand-in answers with the timesteps of every model call
its sampler will make (found by a dry run of the sampler on one number), scales the model's
input for the σ of the call at hand, turns the model's output into the denoised estimate
D(x, σ), sends it into the sampler, and returns the sampler's next evaluation point as the
"previous sample". So one pipeline step is one model call, whatever the sampler's order,
and the pipeline's own encoding, guidance, packing and decoding stay as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from diffusers_tui.engine.sampling.sigma import catalogue
from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas
from diffusers_tui.engine.sampling.sigma.noise import NoiseSource
from diffusers_tui.engine.sampling.sigma.partial import partial_schedule


#: Room for an adaptive sampler's model calls (DPM adaptive); it stops well before on any real model.
ADAPTIVE_CALL_LIMIT = 1000


@dataclass
class StepOutput:
    """What `step` returns, shaped like diffusers' SchedulerOutput (prev_sample, pred_original_sample)."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor

    def to_tuple(self):
        return (self.prev_sample, self.pred_original_sample)

    def __getitem__(self, index):
        return self.to_tuple()[index]


class SigmaSamplerScheduler(SchedulerMixin, ConfigMixin):
    """One engine sampler on one schedule, under one tool's conventions, speaking diffusers' scheduler API."""

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(self, sampler: str = "euler", schedule: str = "a1111:karras", convention: str = "A1111 CPU",
                 seed: int = 0, eta: float | None = None, s_noise: float = 1.0, ensd: int = 0,
                 num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012,
                 beta_schedule: str = "scaled_linear", trained_betas: Any = None, prediction_type: str = "epsilon",
                 flow: bool = False, shift: float = 1.0, use_dynamic_shifting: bool = False,
                 base_shift: float = 0.5, max_shift: float = 1.15, rescale_betas_zero_snr: bool = False,
                 s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float | None = None,
                 sampler_options: dict | None = None, denoise: float | None = None, exact_steps: bool = False,
                 batch_seeds: list | None = None):
        self.spec = catalogue.sampler(sampler)
        self.model_sigmas = _model_sigmas(self.config)
        self.sigma_list: list[float] = []
        #: img2img (config.denoise set): the part of the schedule it runs, and how its start is made; and the unit
        #: noise its start takes where the caller draws it (A1111's variation seed), else None: the seed's own.
        self.partial = None
        self.img2img_noise: torch.Tensor | None = None
        self.eval_sigmas: list[float] = []
        self.timesteps = torch.zeros(0)
        self.sigmas = torch.zeros(0)
        self._run = None
        self.finished = False
        self.expected_calls = 0
        self._eval: tuple[torch.Tensor, float] | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None
        self.noise_source = None
        #: The latest model call's unconditional output, for the CFG++ samplers (see watch_uncond).
        self.uncond_output: torch.Tensor | None = None
        #: Whether a flow run's start is scaled to its first σ (see watch_start).
        self.watching_start = False

    @property
    def needs_uncond(self) -> bool:
        return self.spec.cfgpp

    def watch_uncond(self, denoiser: torch.nn.Module):
        """Keep the unconditional half of each guided call of `denoiser` (pipelines put the negative
        prompt first in the batch); returns the hook's handle, to remove after the run."""
        def keep(module, args, output):
            sample = output[0] if isinstance(output, tuple) else getattr(output, "sample", output)
            if torch.is_tensor(sample) and sample.shape[0] % 2 == 0 and sample.shape[0] > 1:
                self.uncond_output = sample.chunk(2)[0]
            else:
                self.uncond_output = None

        return denoiser.register_forward_hook(keep)

    def watch_start(self, denoiser: torch.nn.Module):
        """On flow models, start the run from σ₀·noise where the schedule's first σ is below 1 (ComfyUI's
        CONST.noise_scaling): flow pipelines draw unit noise in their own layout (packed or not) and never
        read init_noise_sigma, so the model calls before the first step see their latents scaled, and so
        does the sampler. Returns the hook's handle, to remove after the run."""
        def scale(module, args, kwargs):
            if self._run is not None:  # past the first step: the sampler's own x goes in
                return None
            factor = self._start_scale()
            if factor == 1.0:
                return None
            if "hidden_states" in kwargs:
                return args, {**kwargs, "hidden_states": kwargs["hidden_states"] * factor}
            return (args[0] * factor, *args[1:]), kwargs

        self.watching_start = True
        return denoiser.register_forward_pre_hook(scale, with_kwargs=True)

    def _start_scale(self) -> float:
        """What a watched flow run multiplies the pipeline's unit noise by: its first σ (init_noise_sigma)."""
        # img2img's start is made whole by add_noise.
        return self.init_noise_sigma if self.config.flow and self.watching_start and self.partial is None else 1.0

    # ----- what pipelines read -----

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin_index = begin_index

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ per training timestep (ε- and v-models), as diffusers' schedulers hold it: 1 / (1 + σ²)."""
        return 1.0 / (1.0 + self.model_sigmas.sigmas.double() ** 2)

    @property
    def init_noise_sigma(self) -> float:
        """What the pipeline multiplies its unit noise by: σ_max (A1111), √(1 + σ_max²) (ComfyUI's ε/v models)."""
        if not self.sigma_list:
            return 1.0
        top = self.sigma_list[0]
        if self.config.flow:
            return top
        if self.spec.variance_preserving:  # A1111's timestep samplers start from unit noise in ᾱ-scaled x
            return (1 + top**2) ** 0.5
        # ComfyUI scales by √(1 + σ²) only at full denoise: a first σ at (or above) the model's σ_max.
        full = top >= self.model_sigmas.sigma_max or math.isclose(top, self.model_sigmas.sigma_max, rel_tol=1e-5)
        return (1 + top**2) ** 0.5 if full and catalogue.convention(self.config.convention).scales_by_sqrt else top

    def set_timesteps(self, num_inference_steps: int | None = None, device=None, sigmas=None, mu: float | None = None,
                      timesteps=None, **ignored) -> None:
        """The σ list of the named schedule (the pipeline's own σ list or timesteps are not used), and the
        timestep of every model call the sampler will make on it."""
        steps = num_inference_steps or (len(sigmas) if sigmas is not None else len(timesteps or ()) or 1)
        model = self.model_sigmas
        if self.config.flow and self.config.use_dynamic_shifting and mu is not None:
            model = ModelSigmas.for_flow(mu, exponential=True)
        model = self.spec.model_table(model)
        self.active_sigmas = model
        if self.config.denoise is None:
            self.partial = None
            self.sigma_list = catalogue.sigmas_for(self.spec, self.config.schedule, model, steps)
        else:  # img2img: the tool's part of the schedule for this strength (NoStepsError where it keeps none)
            self.partial = partial_schedule(self.spec, self.config.schedule, model, steps, self.config.denoise,
                                            flow=self.config.flow, exact_steps=self.config.exact_steps)
            self.sigma_list = self.partial.sigmas
        self.eval_sigmas = _dry_run(self.spec, self.sigma_list, self._context(model, dry=True))
        nearest = catalogue.convention(self.config.convention).nearest_timestep
        self._nearest = nearest
        #: Model calls the run is expected to make (a sampler that adapts its steps may make more or fewer).
        self.expected_calls = len(self.eval_sigmas)
        values = [self.spec.timestep(model, sigma, nearest) for sigma in self.eval_sigmas]
        if self.spec.adapts_to_x:
            # Its calls depend on the picture: room for many, written in place as it goes (below), and the
            # loop stops when `finished` (pipelines: their interrupt flag).
            values += [values[-1]] * (ADAPTIVE_CALL_LIMIT - len(values))
        self.timesteps = torch.tensor(values, dtype=torch.float32, device=device)
        self.sigmas = torch.tensor(self.eval_sigmas + [0.0], dtype=torch.float32)
        self.num_inference_steps = len(values)
        self._run, self._eval, self._step_index, self.finished = None, None, None, False

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        if self.config.flow:
            return sample
        sigma = self._current_sigma()
        return sample / (sigma**2 + 1) ** 0.5

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, generator: torch.Generator | None = None,
             return_dict: bool = True, **ignored):
        """One model call's output in; the sampler's next evaluation point (or its final sample) out."""
        if self.finished:  # a loop that runs on past an adaptive sampler's end: nothing left to do
            output = StepOutput(sample, sample)
            return output if return_dict else output.to_tuple()
        if self._run is None:
            self._start(sample)  # its noise comes from the run's NoiseSource, not the pipeline's generator
        x_eval, sigma = self._eval
        denoised = self.denoised(model_output, x_eval, sigma)
        if self.spec.cfgpp:
            # CFG++ steps along the unconditional estimate: the pipeline's own batch, caught by watch_uncond
            # (no guidance, or no watch: the guided estimate is the only one there is).
            uncond = self.uncond_output
            self.context.uncond_denoised = (denoised if uncond is None or uncond.shape != model_output.shape
                                            else self.denoised(uncond, x_eval, sigma).to(x_eval.dtype))
            self.uncond_output = None
        index = self._step_index or 0
        try:
            self._eval = self._run.send(denoised.to(x_eval.dtype))
            prev = self._eval[0]
            if self.spec.adapts_to_x and index + 1 < len(self.timesteps):
                # The loop reads each timestep as a view of this tensor when it gets there: the next call's
                # timestep, known only now, is written in place for it.
                self.timesteps[index + 1] = self.spec.timestep(self.active_sigmas, self._eval[1], self._nearest)
                if index + 1 >= len(self.eval_sigmas):
                    self.eval_sigmas.append(self._eval[1])
                    self.expected_calls = len(self.eval_sigmas) + 1
        except StopIteration as finished:
            prev, self._eval = finished.value, None
            self.finished = True
            self.expected_calls = index + 1
            self.noise_source = None  # the next run draws afresh
        self._step_index = index + 1
        output = StepOutput(prev.to(sample.dtype), denoised.to(sample.dtype))
        return output if return_dict else output.to_tuple()

    def denoised(self, model_output: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """D(x, σ) from the model's raw output, by its prediction type (k-diffusion's and ComfyUI's formulas)."""
        output, x = model_output.float(), x.float()
        if self.config.flow or self.config.prediction_type == "flow_prediction":
            return x - sigma * output  # x = (1 - σ) x0 + σ ε, and the model predicts v = ε - x0
        if self.config.prediction_type == "v_prediction":
            return output * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)
        if self.config.prediction_type == "sample":
            return output
        return x - sigma * output

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """img2img's start from the init latent: noised as the sampler's tool does it (sigma.partial), with this
        run's own starting noise (the seed's, as A1111 and ComfyUI draw it), not the pipeline's `noise`."""
        if self.partial is not None:
            given = self.img2img_noise  # A1111's variation seed, drawn by the caller; else the seed's own
            own = given.to(original.device, torch.float32) if given is not None else \
                self.starting_noise(original.shape, original.device, torch.float32)
            start = original.float() * self.partial.latent_scale + own * self.partial.noise_scale
            return start.to(original.dtype)
        sigma = self.active_sigmas.sigma(float(timesteps.flatten()[0]))
        return original * (1 - sigma) + noise * sigma if self.config.flow else original + noise * sigma

    def scale_noise(self, sample: torch.Tensor, timestep, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Flow pipelines' name for add_noise (SD3 and Flux img2img)."""
        return self.add_noise(sample, noise, torch.as_tensor(timestep))

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    # ----- the sampler run -----

    def _current_sigma(self) -> float:
        if self._eval is not None:
            return self._eval[1]
        index = self._step_index or 0
        return self.eval_sigmas[min(index, len(self.eval_sigmas) - 1)] if self.eval_sigmas else 1.0

    def _context(self, model: ModelSigmas, dry: bool = False, sample=None) -> SamplerContext:
        spec = self.spec
        eta = spec.eta if self.config.eta is None else self.config.eta
        if dry:
            noise = lambda sigma, sigma_next: torch.zeros(1)  # noqa: E731 - the dry run needs σs, not noise
        else:
            # The pipeline drew the starting noise from the run's CPU generator; a source seeded alike
            # draws it again and drops it, so A1111's ancestral noise continues where that one left off.
            if self.noise_source is None:
                self.noise_source = self.new_noise_source(sample.device)
            # A1111's img2img tree spans the whole schedule, not the part it runs.
            tree_sigmas = self.partial.tree_sigmas if self.partial is not None else self.sigma_list
            noise = self.noise_source.for_sampler(sample, brownian=spec.brownian, sigmas=tree_sigmas,
                                                  tree_on_cpu=spec.options.get("tree_on_cpu"))
        # A1111's DPM fast and adaptive integrate over the model's σ range; ComfyUI's over the σ list's.
        sigma_min, sigma_max = (model.sigma_min, model.sigma_max) if spec.tool == catalogue.A1111 else (0.0, 0.0)
        if spec.tool == catalogue.A1111 and self.partial is not None and self.partial.solver_range:
            sigma_min, sigma_max = self.partial.solver_range  # img2img: the kept schedule's own range
        # What ComfyUI's samplers read from model_sampling: percent_to_sigma (SA-Solver's noise window) and,
        # on flow models, the offset first σ of the log-SNR samplers (held in float32, as ComfyUI holds it).
        options = {**spec.options, "model_sigmas": model, "shift": model.shift}
        churn = {"s_churn": self.config.s_churn, "s_tmin": self.config.s_tmin, "s_tmax": self.config.s_tmax}
        options.update({name: value for name, value in churn.items() if value})  # 0 and None: the defaults
        options.update(self.config.sampler_options or {})  # a request's own (engine.sampling.sampler_options)
        if self.config.flow:
            offset = model.sigma((1.0 - 1e-4) * model.multiplier)
            options["first_sigma_offset"] = float(torch.tensor(offset, dtype=torch.float32))
        return SamplerContext(noise=noise, eta=eta, s_noise=self.config.s_noise, flow=self.config.flow,
                              sigma_min=sigma_min, sigma_max=sigma_max, options=options)

    def new_noise_source(self, device) -> NoiseSource:
        # A batch (batch_seeds): one seed per image, each image's noise its own generator's, as A1111 draws it.
        seeds = [int(seed) for seed in self.config.batch_seeds or [self.config.seed]]
        return NoiseSource(self.config.convention, seeds, device, ensd=self.config.ensd)

    def starting_noise(self, shape, device, dtype) -> torch.Tensor:
        """This run's unit starting noise, drawn under its convention (the caller scales it by
        init_noise_sigma); the sampler's own noise then continues from the same source."""
        self.noise_source = self.new_noise_source(device)
        return self.noise_source.initial(shape).to(device, dtype)

    def varied_starting_noise(self, shape, device, dtype, variation_seed: int | None, strength: float,
                              resize_from=None, latent_factor: int = 8) -> torch.Tensor:
        """This run's unit starting noise with A1111's variation seed and seed resize, under its convention
        (engine.sampling.variation); the sampler's own noise still continues from the seed's source."""
        from diffusers_tui.engine.sampling.variation import varied_noise

        return varied_noise(int(self.config.seed), variation_seed, strength, resize_from, shape,
                            self.config.convention, device, dtype, latent_factor)

    @property
    def draws_its_own_start(self) -> bool:
        """Whether the starting noise differs from a CPU generator's seeded with the seed (A1111 GPU, NV)."""
        return self.config.convention in ("A1111 GPU", "A1111 NV")

    def _start(self, sample: torch.Tensor) -> None:
        scale = self._start_scale()
        sample = sample * scale if scale != 1.0 else sample
        self.context = self._context(self.active_sigmas, sample=sample)
        self._run = self.spec.function(sample, list(self.sigma_list), self.context)
        self._eval = next(self._run)
        if self._eval[1] != self.eval_sigmas[0]:
            raise RuntimeError(f"{self.spec.name} does not start at the schedule's first σ")


def _dry_run(spec, sigma_list: list[float], context: SamplerContext) -> list[float]:
    """The σ of every model call the sampler makes on this list, from a run on one number."""
    run = spec.function(torch.zeros(1, dtype=torch.float64), list(sigma_list), context)
    sigmas = []
    try:
        x, sigma = next(run)
        while True:
            sigmas.append(float(sigma))
            context.uncond_denoised = torch.zeros_like(x)  # the CFG++ samplers read it after each call
            x, sigma = run.send(torch.zeros_like(x))
    except StopIteration:
        return sigmas


def _model_sigmas(config) -> ModelSigmas:
    if config.flow:
        return ModelSigmas.for_flow(config.shift)
    if config.trained_betas is not None:
        return ModelSigmas.from_betas(torch.tensor(config.trained_betas, dtype=torch.float64))
    steps = config.num_train_timesteps
    if config.beta_schedule == "linear":
        betas = torch.linspace(config.beta_start, config.beta_end, steps, dtype=torch.float64)
    elif config.beta_schedule == "scaled_linear":
        betas = torch.linspace(config.beta_start**0.5, config.beta_end**0.5, steps, dtype=torch.float64) ** 2
    else:
        from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar

        betas = betas_for_alpha_bar(steps).double()
    return ModelSigmas.from_betas(betas)

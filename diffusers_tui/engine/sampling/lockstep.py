"""Run a comparison: every lane in lockstep, one batched UNet call per round, or one by one.

In a round, every lane that still has a timestep left contributes its (guided) model
input; the UNet sees them all at once with per-sample timesteps, and each lane's own
scheduler steps its own share of the output. Each lane keeps its own generator, seeded
like a solo run, so its starting noise and any noise its scheduler draws are the same
as in `runner.run`: batched and one-by-one give the same images (within float error).
Transformer pipelines batch their lanes through the pipeline's own loop instead
(pipeline_batch). Other models (SDXL, say) run their lanes one after another through
`runner.run`, and the comparison says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable

import torch

from diffusers_tui.engine import study_metrics
from diffusers_tui.engine.comparison import ComparisonRequest, ComparisonResult, LaneResult
from diffusers_tui.engine.preview import finite_frames, with_last_preview
from diffusers_tui.engine.preview.images import tensor_to_image
from diffusers_tui.engine.preview.record import LatentRecorder
from diffusers_tui.engine.request import GenerationRequest, GenerationResult, StepSnapshot
from diffusers_tui.engine.models import dressing, loras
from diffusers_tui.engine.sampling import pipeline_batch, runner, variation
from diffusers_tui.engine.sampling.sigma import catalogue
from diffusers_tui.engine.sampling.estimates import current_sigma
from diffusers_tui.engine.sampling.noise_settings import comparison_notes
from diffusers_tui.engine.sampling.facts import run_facts
from diffusers_tui.engine.sampling.policy import NanWatch, denoised_estimate, not_finite_message, preview_due
from diffusers_tui.engine.sampling import prompt_weighting
from diffusers_tui.engine.sampling.preflight import accepts, check_mode, check_steps, resolve_size, scheduler_for

#: Lanes per UNet call at most: a study of many lanes runs each round in chunks, so memory stays bounded.
MAX_BATCH_LANES = 16
#: Final images decoded in one VAE call at most (a decode at 512 px takes far more memory than a UNet call).
MAX_DECODE_LANES = 4
#: on_lane_step(lane_index, snapshot); the reference runs, when there are some, are the last lanes.
OnLaneStep = Callable[[int, StepSnapshot], None]


def can_batch(loaded) -> bool:
    """True for the models whose denoising loop `_LockstepLoop` reproduces exactly."""
    if loaded.mode == "unet":
        return True
    from diffusers import StableDiffusionPipeline

    unet = getattr(loaded.pipeline, "unet", None)  # transformer pipelines: see pipeline_batch
    if unet is None:
        return False
    return (type(loaded.pipeline) is StableDiffusionPipeline
            and unet.config.time_cond_proj_dim is None and unet.config.addition_embed_type is None)


def compare(loaded, request: ComparisonRequest, on_lane_step: OnLaneStep | None = None,
            cancel: threading.Event | None = None, switch_loras=None) -> ComparisonResult:
    """Run every lane of `request` (and its reference) on `loaded`.

    `switch_loras(lane_request)` sets the model's LoRAs (and embeddings) for a lane and returns what its
    recipe records (models.dressing.dress): lanes with the same LoRAs at the same weights run together, group by group, as
    LoRA weights are the model's, not a batch row's."""
    cancel = cancel or threading.Event()
    on_lane_step = on_lane_step or (lambda index, snapshot: None)
    requests = request.lane_requests()
    started = time.perf_counter()
    frames: list[list[StepSnapshot]] = [[] for _ in requests]

    def record(index: int, snapshot: StepSnapshot) -> None:
        if snapshot.latents is not None:
            frames[index].append(snapshot)
        on_lane_step(index, snapshot)

    groups: dict[tuple, list[int]] = {}
    for index, lane_request in enumerate(requests):
        groups.setdefault(tuple(loras.of_request(lane_request)) if switch_loras else (), []).append(index)
    results: list = [None] * len(requests)
    batched = False
    for indices in groups.values():
        if cancel.is_set():
            break
        applied = switch_loras(requests[indices[0]]) if switch_loras else {}
        ran, batched = _run_lanes(loaded, request.batch, [requests[i] for i in indices],
                                  lambda i, snapshot, indices=indices: record(indices[i], snapshot), cancel)
        for index, result in zip(indices, ran):
            results[index] = dressing.recorded(result, applied)
        if len(ran) < len(indices):
            break
    # Cancelled part way: the lanes up to the first that did not run, as one by one gives.
    results = results[:results.index(None)] if None in results else results
    lanes = list(request.lanes) + request.reference_lanes()
    lane_results = []
    for index, (lane, result) in enumerate(zip(lanes, results)):
        kept = finite_frames(frames[index]) if result.stopped else frames[index]
        lane_results.append(LaneResult(lane, with_last_preview(result, kept), tuple(kept)))
    # One by one and cancelled, the references (last) may not all have run.
    references = lane_results[len(request.lanes):]
    lane_results = lane_results[:len(request.lanes)]
    notes = () if batched or not request.batch else (
        f"{type(loaded.pipeline).__name__} lanes ran one after another (batching covers Stable Diffusion 1.x "
        "pipelines, transformer pipelines and UNet2DModel)",)
    notes += comparison_notes(request.lane_requests()[:len(request.lanes)])
    return ComparisonResult(
        request=request, lanes=tuple(study_metrics.measure(request, lane_results, references)), references=tuple(references),
        batched=batched, elapsed_s=time.perf_counter() - started,
        cancelled=cancel.is_set() or len(lane_results) < len(request.lanes), notes=notes,
    )


def _run_lanes(loaded, batch: bool, requests: list[GenerationRequest], record, cancel) -> tuple[list, bool]:
    """Run `requests` together where the model allows (a lockstep loop, or the pipeline's own batch), else one
    after another; returns their results (fewer when cancelled) and whether they were batched."""
    if batch and can_batch(loaded):
        return _with_adaptive_lanes_alone(loaded, requests, record, cancel,
                                          lambda chosen, chosen_record: _LockstepLoop(loaded, chosen).run(
                                              chosen_record, cancel)), True
    if batch and pipeline_batch.can_batch(loaded):
        return _with_adaptive_lanes_alone(loaded, requests, record, cancel,
                                          lambda chosen, chosen_record: _through_the_pipeline(
                                              loaded, chosen, chosen_record, cancel)), True
    results = []
    for index, lane_request in enumerate(requests):
        if cancel.is_set():
            break
        results.append(runner.run(loaded, lane_request, lambda s, i=index: record(i, s), cancel))
    return results, False


def _adapts_to_x(request: GenerationRequest) -> bool:
    """Whether a lane's sampler decides its model calls as it goes (DPM adaptive): no round can wait for it."""
    from diffusers_tui.engine.sampling import registry

    if request.scheduler is None:
        return False
    entry = registry.resolve_any(request.scheduler, request.schedule)[0]
    return entry.is_engine and catalogue.sampler(entry.options["sampler"]).adapts_to_x


def _runs_alone(request) -> bool:
    """A lane the batched loops cannot run: a variation seed or seed resize (drawn by the single-run loops), PAG
    (the PAG pipeline's attention), an init image, the hires fix or a batch of its own."""
    from diffusers_tui.engine.sampling import batches, hires, img2img

    return (variation.applies(request) or request.pag_scale > 0 or img2img.applies(request) or hires.applies(request)
            or batches.applies(request))


def _with_adaptive_lanes_alone(loaded, requests, record, cancel, run_batched) -> list[GenerationResult]:
    """The lanes batched by `run_batched`, but for adaptive samplers' lanes, and lanes with a variation seed or
    seed resize (their starting noise is drawn by the single-run loops), each run on its own."""
    alone = [index for index, lane_request in enumerate(requests) if _adapts_to_x(lane_request) or _runs_alone(lane_request)]
    together = [index for index in range(len(requests)) if index not in alone]
    results: list = [None] * len(requests)
    if together:
        batch = run_batched([requests[i] for i in together], lambda i, snapshot: record(together[i], snapshot))
        for index, result in zip(together, batch):
            results[index] = result
    for index in alone:
        if cancel.is_set():
            break
        results[index] = runner.run(loaded, requests[index], lambda snapshot, i=index: record(i, snapshot), cancel)
    # Cancelled part way: the lanes up to the first that did not run, as one by one gives.
    return results[:results.index(None)] if None in results else results


def _through_the_pipeline(loaded, requests: list[GenerationRequest], record, cancel) -> list[GenerationResult]:
    """Lanes the pipeline would treat alike share one pipeline call (pipeline_batch)."""
    from diffusers_tui.engine.sampling import registry

    groups: dict[tuple, list[int]] = {}
    for index, lane_request in enumerate(requests):
        # The pipeline reads one scheduler's class, config flags and starting σ for the whole batch.
        trial = scheduler_for(loaded, lane_request)
        registry.set_trial_timesteps(trial, lane_request.steps)
        # One pipeline call takes one prompt and guidance: a study's lanes that change them go in groups of their own.
        key = (lane_request.steps, len(trial.timesteps), type(trial).__name__, bool(trial.config.get("use_flow_sigmas")),
               round(float(getattr(trial, "init_noise_sigma", 1.0)), 6), lane_request.prompt,
               lane_request.negative_prompt, lane_request.guidance, lane_request.noise, lane_request.ensd,
               lane_request.eta, lane_request.s_noise, lane_request.shift, lane_request.s_churn,
               lane_request.s_tmin, lane_request.s_tmax, lane_request.sampler_options, lane_request.guidance_rescale)
        groups.setdefault(key, []).append(index)
    results: list = [None] * len(requests)
    for indices in groups.values():
        if cancel.is_set():
            break
        batch = pipeline_batch.run_batch(loaded, [requests[i] for i in indices], record, cancel, indices)
        for index, result in zip(indices, batch):
            results[index] = result
    # Cancelled before every group ran: the lanes up to the first that did not run, as one by one gives.
    return results[:results.index(None)] if None in results else results


class _Lane:
    """One lane's scheduler, generator, sample and progress through its timesteps."""

    def __init__(self, loaded, request: GenerationRequest, shape: tuple[int, ...], pipeline_mode: bool):
        device, dtype = loaded.device, loaded.dtype
        self.request = request
        self.scheduler = scheduler_for(loaded, request)
        check_steps(self.scheduler, request)
        # A CPU generator per lane, seeded like a solo run: same start, same step noise.
        self.generator = torch.Generator(device="cpu").manual_seed(request.seed)
        self.scheduler.set_timesteps(request.steps, device=device)
        self.timesteps = list(self.scheduler.timesteps)
        # Values read once: reading a device tensor's value every step would wait for the device.
        self.timestep_values = [float(t) for t in self.scheduler.timesteps.cpu()]
        self.recorder = LatentRecorder(loaded.decoders, len(self.timesteps))
        self.nan_watch = NanWatch()
        if pipeline_mode:  # as StableDiffusionPipeline.prepare_latents draws it
            from diffusers.utils.torch_utils import randn_tensor

            noise = randn_tensor(shape, generator=self.generator, device=device, dtype=dtype)
        else:  # as runner's UNet loop draws it
            noise = torch.randn(shape, generator=self.generator, dtype=torch.float32).to(device, dtype)
        self.sample = noise * self.scheduler.init_noise_sigma
        self.step_kwargs = {}
        if accepts(self.scheduler.step, "generator"):
            self.step_kwargs["generator"] = self.generator
        if pipeline_mode and accepts(self.scheduler.step, "eta"):
            self.step_kwargs["eta"] = request.eta or 0.0  # the pipeline's default, as it passes it
        #: Classifier-free guidance doubles the lane's batch rows, as the pipeline does above guidance 1.
        self.guided = pipeline_mode and request.guidance > 1.0
        self.embeds = None  # its text states, set by the loop
        self.calls = 0
        self.elapsed_s = 0.0
        self.image = None
        self.stopped: str | None = None  # why the lane stopped early by itself (NaN)

    @property
    def total(self) -> int:
        return len(self.timesteps)

    @property
    def done(self) -> bool:
        return self.calls >= self.total or self.stopped is not None


class _LockstepLoop:
    """All lanes advance one model call per round; one UNet call serves the whole round."""

    def __init__(self, loaded, requests: list[GenerationRequest]):
        self.loaded = loaded
        self.pipe = loaded.pipeline
        self.pipeline_mode = loaded.mode != "unet"
        base = requests[0]
        check_mode(loaded, base)
        self.width, self.height = resolve_size(loaded, base)
        if self.pipeline_mode:
            unet = self.pipe.unet
            factor = self.pipe.vae_scale_factor
            shape = (1, unet.config.in_channels, self.height // factor, self.width // factor)
        else:
            unet = loaded.unet
            shape = (1, unet.config.in_channels, self.height, self.width)
        self.unet = unet
        self.lanes = [_Lane(loaded, request, shape, self.pipeline_mode) for request in requests]

    def run(self, on_lane_step: OnLaneStep, cancel: threading.Event) -> list[GenerationResult]:
        started = time.perf_counter()
        cancelled = False
        with torch.inference_mode():
            if self.pipeline_mode:  # each distinct prompt encoded once, whatever the number of lanes using it
                encoded = {}
                for lane in self.lanes:
                    key = (lane.request.prompt, lane.request.negative_prompt, lane.guided)
                    lane.embeds = encoded.get(key)
                    if lane.embeds is None:
                        lane.embeds = encoded[key] = self._encode_prompt(lane.request, lane.guided)
            while not all(lane.done for lane in self.lanes):
                if cancel.is_set():
                    cancelled = True
                    break
                active = [(i, lane) for i, lane in enumerate(self.lanes) if not lane.done]
                for start in range(0, len(active), MAX_BATCH_LANES):
                    chunk = active[start:start + MAX_BATCH_LANES]
                    outputs = self._model_round([lane for _, lane in chunk])
                    stepped = [(index, lane, self._step_lane(lane, model_output))
                               for (index, lane), model_output in zip(chunk, outputs)]
                    # Lanes that finished together decode together; each step is told once its lane's image is made.
                    self._decode([lane for _, lane, _ in stepped if lane.calls == lane.total and not lane.stopped])
                    for index, lane, snapshot in stepped:
                        if snapshot is not None:
                            lane.elapsed_s = time.perf_counter() - started
                            on_lane_step(index, replace(snapshot, elapsed_s=lane.elapsed_s))
        return [self._result(lane, cancelled) for lane in self.lanes]

    def _encode_prompt(self, request: GenerationRequest, guided: bool) -> torch.Tensor:
        """The text states a lane's model input goes with: [uncond, text] under guidance, else text."""
        if prompt_weighting.applies(self.pipe, request.prompt, request.negative_prompt):
            embeds = prompt_weighting.prompt_kwargs(self.pipe, request.prompt, request.negative_prompt)
            positive, negative = embeds["prompt_embeds"], embeds["negative_prompt_embeds"]
        else:
            positive, negative = self.pipe.encode_prompt(
                request.prompt, self.pipe._execution_device, 1, guided, request.negative_prompt or None)
        return torch.cat([negative, positive]) if guided else positive

    def _model_round(self, lanes: list[_Lane]) -> list[torch.Tensor]:
        """One UNet call for every lane's next timestep; each lane's (guided, at its own scale) output."""
        inputs, timesteps, copies = [], [], []
        for lane in lanes:
            count = 2 if lane.guided else 1
            t = lane.timesteps[lane.calls]
            model_input = lane.scheduler.scale_model_input(torch.cat([lane.sample] * count), t)
            inputs.append(model_input)
            # Float timesteps: the UNet's sinusoidal embedding casts them so anyway.
            timesteps.append(torch.full((count,), float(t), device=model_input.device))
            copies.append(count)
        batch, t_batch = torch.cat(inputs), torch.cat(timesteps)
        if not self.pipeline_mode:
            output = self.unet(batch, t_batch).sample
        else:
            states = torch.cat([lane.embeds for lane in lanes])  # each lane's [uncond, text] (or text), in order
            output = self.unet(batch, t_batch, encoder_hidden_states=states, return_dict=False)[0]
        results = []
        for lane, lane_output in zip(lanes, output.split(copies)):
            if lane.guided:
                uncond, text = lane_output.chunk(2)
                lane_output = uncond + lane.request.guidance * (text - uncond)
                if lane.request.guidance_rescale > 0:  # as the pipeline rescales it (diffusers' own function)
                    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

                    lane_output = rescale_noise_cfg(lane_output, text, guidance_rescale=lane.request.guidance_rescale)
            results.append(lane_output)
        return results

    def _step_lane(self, lane: _Lane, model_output) -> StepSnapshot | None:
        """Step `lane` with its model output; the step's snapshot (elapsed time to be set), None if it stopped."""
        t, value = lane.timesteps[lane.calls], lane.timestep_values[lane.calls]
        sigma = current_sigma(lane.scheduler, value)
        output = lane.scheduler.step(model_output, t, lane.sample, **lane.step_kwargs)
        lane.calls += 1
        request = lane.request
        record = None
        if preview_due(lane.calls, lane.total, request):
            x0 = denoised_estimate(lane.scheduler, output, model_output, lane.sample, value, sigma)
            record = lane.recorder.record(x0, output.prev_sample)
        if not lane.nan_watch.finite(lane.calls, lane.total, record, output.prev_sample):
            lane.calls = lane.nan_watch.bad_call
            lane.stopped = not_finite_message(f"latents by model call {lane.calls} of {lane.total}", self.loaded.dtype)
            return None
        lane.sample = output.prev_sample
        return StepSnapshot(step=lane.calls, total=lane.total, timestep=value, sigma=sigma, elapsed_s=0.0,
                            latents=record, preview_kind=request.preview)

    def _decode(self, lanes: list[_Lane]) -> None:
        """Each lane's final image, the VAE decoding up to MAX_DECODE_LANES of them in one call."""
        if not self.pipeline_mode:
            for lane in lanes:
                lane.image = tensor_to_image(lane.sample[0])
            return
        vae = self.pipe.vae
        # AutoencoderKL's decoder draws no noise (the pipeline's generator goes unused), so lanes can share a call;
        # another decoder gets each lane's own generator, one lane at a time, as the pipeline calls it.
        shared = type(vae).__name__ == "AutoencoderKL"
        for start in range(0, len(lanes), MAX_DECODE_LANES if shared else 1):
            group = lanes[start:start + (MAX_DECODE_LANES if shared else 1)]
            samples = torch.cat([lane.sample for lane in group]) / vae.config.scaling_factor
            decoded = vae.decode(samples, return_dict=False, **({} if shared else {"generator": group[0].generator}))[0]
            images = self.pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True] * len(group))
            for lane, image in zip(group, images):
                lane.image = image

    def _result(self, lane: _Lane, cancelled: bool) -> GenerationResult:
        return GenerationResult(
            request=lane.request, image=lane.image, cancelled=cancelled and not lane.done,
            elapsed_s=lane.elapsed_s, model_calls=lane.calls, total_calls=lane.total,
            recipe=run_facts(self.loaded, lane.scheduler, self.width, self.height, lane.request), stopped=lane.stopped,
        )

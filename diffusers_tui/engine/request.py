"""The frozen values that cross the engine's boundary: requests, step snapshots, results.

Nothing here imports torch, so the app can build and validate requests before the
heavy libraries are loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from diffusers_tui.engine.errors import RequestError, SchedulerUnavailableError
# The limits and number checks live in values.py; importers of this module keep finding them here.
from diffusers_tui.engine.values import (LIMITS, MAX_CHURN, MAX_CHURN_SIGMA, MAX_GUIDANCE,  # noqa: F401
                                         MAX_NOISE_SCALE, MAX_PROMPT_CHARS, MAX_SEED, MAX_SHIFT, MAX_SIDE,
                                         MAX_STEPS, check_real, check_whole, describe_range, parse_number,
                                         parse_size, parse_whole, random_seed)

Mode = Literal["auto", "text-to-image", "unet"]
PreviewKind = Literal["x0", "noisy"]
PreviewMethod = Literal["auto", "latent", "taesd", "vae", "none"]
PREVIEW_METHODS: tuple[str, ...] = ("auto", "latent", "taesd", "vae", "none")

#: What the built-in demo draws well, and what a command draws when given no prompt.
DEFAULT_PROMPT = "a red circle on a blue background"


#: Noise conventions a request may name (engine.sampling.sigma.catalogue.CONVENTIONS, and auto).
NOISE_CONVENTIONS = ("auto", "A1111 CPU", "A1111 GPU", "A1111 NV", "ComfyUI")


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one run needs, validated once at construction and never changed."""

    prompt: str = ""
    negative_prompt: str = ""
    #: Model name as given to --model: "demo", a Hub id, a folder or a .safetensors file.
    model: str = "demo"
    #: "auto" follows the model: text-to-image for pipelines, "unet" for a bare UNet2DModel.
    mode: Mode = "auto"
    #: A sampler's registry name (see engine.sampling.registry); None keeps the model's own.
    #: An older one-name spelling ("DPM++ 2M Karras") is stored as sampler + schedule.
    scheduler: str | None = None
    #: A1111's schedule type: Automatic (the sampler's own default), Uniform, Karras, Exponential,
    #: Beta or SGM Uniform, where the sampler offers it.
    schedule: str = "Automatic"
    steps: int = 20
    guidance: float = 5.0
    seed: int = 0
    #: Image size in pixels; None uses the model's native size.
    width: int | None = None
    height: int | None = None
    #: Preview the denoised estimate ("x0") or the noisy sample ("noisy").
    preview: PreviewKind = "x0"
    #: Record a step's latents every N model calls (the last call always is recorded).
    preview_every: int = 1
    #: How a recorded latent becomes a live picture: latent (a linear map), taesd (a tiny
    #: decoder), vae (a full decode), auto (chosen at load), or none (record nothing).
    #: Saved snapshots are always full decodes. See engine.preview.decoders.
    preview_method: PreviewMethod = "auto"
    #: Whose rules the run's noise follows (engine samplers): "A1111 CPU", "A1111 GPU", "A1111 NV",
    #: "ComfyUI", or "auto" (the sampler's tool: A1111 CPU for A1111's names, ComfyUI for its ids).
    noise: str = "auto"
    #: A1111's eta noise seed delta: after the starting noise, A1111's generators restart at seed + ENSD.
    ensd: int = 0
    #: How much noise an ancestral or SDE sampler adds back at each step (k-diffusion's eta, DDIM's eta);
    #: None keeps the sampler's own (1 for ancestral and SDE samplers, 0 for DDIM). ODE samplers take none.
    eta: float | None = None
    #: The scale of the noise those samplers add (k-diffusion's s_noise); 1 adds it as drawn.
    s_noise: float = 1.0
    #: A flow-matching model's schedule shift (σ' = sσ / (1 + (s-1)σ)); None keeps the model's own, or its
    #: shift by image size (Flux). Models that are not flow-matching refuse it.
    shift: float | None = None
    #: Karras et al.'s churn, for Euler, Heun and DPM2 (k-diffusion's s_churn, s_tmin, s_tmax): each step whose
    #: σ lies in s_tmin..s_tmax is first raised by min(s_churn / steps, √2 - 1) with fresh noise. 0 is none;
    #: no s_tmax is no upper bound.
    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: float | None = None
    #: LoRAs to run with, as (file path or name, weight) pairs; a name is a file stem in the engine's LoRA
    #: folders (A1111's rule). See engine.models.loras.
    loras: tuple = ()
    #: Numeric options of the engine's samplers beyond these (ComfyUI's sampler nodes expose them: DPM++ SDE's
    #: r, SA-Solver's orders...), as (name, value) pairs. See engine.sampling.sampler_options.
    sampler_options: tuple = ()
    #: CFG rescale (diffusers' guidance_rescale), 0 (off) to 1, for the pipelines that have it.
    guidance_rescale: float = 0.0
    #: Perturbed-attention guidance's scale (0: off), through the pipeline's PAG variant (engine.sampling.variants).
    pag_scale: float = 0.0
    #: A1111's variation seed and strength (0 to 1), and its seed resize as (width, height): engine.sampling.variation.
    variation_seed: int | None = None
    variation_strength: float = 0.0
    seed_resize_from: tuple | None = None
    #: img2img: the picture to start from (a file), and how much of it is denoised (A1111's denoising strength,
    #: 0 to 1; None: 0.75, A1111's default). See engine.sampling.img2img.
    init_image: str | None = None
    strength: float | None = None
    #: A1111's hires fix: a second, img2img pass at hires_scale times the size (None: off) after hires_upscaler,
    #: of hires_steps steps (0: `steps`), at `strength` (None: 0.7). See engine.sampling.hires.
    hires_scale: float | None = None
    hires_steps: int = 0
    hires_upscaler: str = "Latent"
    #: A1111's batches: images per model call, and calls in a row; seeds count up from `seed` over all of them.
    #: See engine.sampling.batches.
    batch_size: int = 1
    batch_count: int = 1

    def __post_init__(self) -> None:
        _check_text("prompt", self.prompt)
        if self.mode == "text-to-image":
            check_prompt_given(self.prompt)
        _check_text("negative_prompt", self.negative_prompt)
        if not isinstance(self.model, str) or not self.model.strip() or "\x00" in self.model:
            raise RequestError("model", "give a model name, folder or file (for example 'demo')")
        if self.mode not in ("auto", "text-to-image", "unet"):
            raise RequestError("mode", f"{self.mode!r} is not one of auto, text-to-image, unet")
        _check_scheduler(self)
        check_whole("steps", self.steps, 1, MAX_STEPS)
        if isinstance(self.guidance, bool) or not isinstance(self.guidance, (int, float)) or not (
            0.0 <= float(self.guidance) <= MAX_GUIDANCE
        ):
            raise RequestError("guidance", f"{self.guidance!r} is outside 0 to {MAX_GUIDANCE:g}")
        check_whole("seed", self.seed, 0, MAX_SEED)
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None:
                check_whole(name, value, 8, MAX_SIDE)
                if value % 8:
                    raise RequestError(name, f"{value} is not a multiple of 8 (8 to {MAX_SIDE})")
        if self.preview not in ("x0", "noisy"):
            raise RequestError("preview", f"{self.preview!r} is not x0 or noisy")
        check_whole("preview_every", self.preview_every, 1, MAX_STEPS)
        if self.preview_method == "linear":  # its name in older recipes and settings
            object.__setattr__(self, "preview_method", "latent")
        if self.preview_method not in PREVIEW_METHODS:
            raise RequestError("preview_method", f"{self.preview_method!r} is not one of {', '.join(PREVIEW_METHODS)}")
        check_whole("ensd", self.ensd, 0, MAX_SEED)
        if self.eta is not None:
            check_real("eta", self.eta, 0.0, MAX_NOISE_SCALE)
        check_real("s_noise", self.s_noise, 0.0, MAX_NOISE_SCALE)
        if self.shift is not None:
            check_real("shift", self.shift, 0.0, MAX_SHIFT, low_included=False)
        _check_loras(self)
        from diffusers_tui.engine.sampling.sampler_options import checked

        object.__setattr__(self, "sampler_options", checked(self.sampler_options))
        check_real("guidance_rescale", self.guidance_rescale, 0.0, 1.0)
        check_real("pag_scale", self.pag_scale, 0.0, MAX_GUIDANCE)
        from diffusers_tui.engine.sampling.variation import checked_resize

        object.__setattr__(self, "seed_resize_from", checked_resize(self, MAX_SEED, MAX_SIDE))
        if self.init_image is not None:
            _check_text("init_image", self.init_image)
            if not self.init_image.strip():
                raise RequestError("init_image", "is empty: give the path of a picture, or leave it out")
        if self.strength is not None:
            check_real("strength", self.strength, 0.0, 1.0)
        from diffusers_tui.engine.sampling.hires import check_fields

        check_fields(self, check_real, check_whole, MAX_STEPS)
        from diffusers_tui.engine.sampling.batches import check_batch

        check_batch(self, check_whole)
        check_real("s_churn", self.s_churn, 0.0, MAX_CHURN)
        check_real("s_tmin", self.s_tmin, 0.0, MAX_CHURN_SIGMA)
        if self.s_tmax is not None:
            check_real("s_tmax", self.s_tmax, 0.0, MAX_CHURN_SIGMA)
        if self.noise not in NOISE_CONVENTIONS:
            raise RequestError("noise", f"{self.noise!r} is not one of {', '.join(NOISE_CONVENTIONS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationRequest":
        """Rebuild a request from `to_dict` output, ignoring keys this version lacks."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise RequestError(name, "must be text")
    if len(value) > MAX_PROMPT_CHARS:
        raise RequestError(name, f"is {len(value)} characters; the limit is {MAX_PROMPT_CHARS}")
    if "\x00" in value:
        raise RequestError(name, "contains a NUL character; remove it")
    try:
        # Bytes that were not UTF-8 (a mis-set terminal, say) arrive as lone surrogates,
        # which no file or PNG chunk can store.
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RequestError(name, f"has bytes that are not valid UTF-8 text at character {error.start}; "
                                 "retype it (is the terminal's locale UTF-8?)") from None


def _check_scheduler(request: "GenerationRequest") -> None:
    """The sampler and schedule type checked, and stored in their registry spelling."""
    from diffusers_tui.engine.sampling import registry as schedulers

    name, schedule = request.scheduler, request.schedule
    if schedule is not None and not isinstance(schedule, str):
        raise RequestError("schedule", "must be text: Automatic, Uniform, Karras, Exponential, Beta or SGM Uniform")
    try:
        schedule = schedulers.canonical_schedule(schedule)
    except SchedulerUnavailableError as error:
        raise RequestError("schedule", str(error).removeprefix("schedule: ")) from None
    if name is not None and isinstance(name, str) and schedulers.is_model_default(name):
        name = None  # the model's own scheduler, as the first row of every list names it
        object.__setattr__(request, "scheduler", None)
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise RequestError("scheduler", "give a scheduler name; `diffusers-tui schedulers` lists them")
        try:
            entry, schedule = schedulers.resolve(name, schedule)
        except SchedulerUnavailableError as error:
            try:  # a flow model's sampler may offer what the others do not (UniPC on Beta, say)
                entry, schedule = schedulers.resolve(name, schedule, flow=True)
            except SchedulerUnavailableError:
                field_name, _, message = str(error).partition(": ")
                raise RequestError(field_name, message) from None
        object.__setattr__(request, "scheduler", entry.name)
    object.__setattr__(request, "schedule", schedule)


def _check_loras(request: "GenerationRequest") -> None:
    """The LoRAs as a tuple of (name, weight) pairs (a recipe's JSON gives lists), each checked."""
    from diffusers_tui.engine.models.loras import check_weight

    loras = request.loras
    if isinstance(loras, (str, bytes)) or not isinstance(loras, (list, tuple)):
        raise RequestError("lora", "must be a list of [file or name, weight] pairs")
    pairs = []
    for item in loras:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str) or not item[0]:
            raise RequestError("lora", f"{shown_value(item)} is not a [file or name, weight] pair")
        _check_text("lora", item[0])
        pairs.append((item[0], check_weight(item[1], item[0])))
    object.__setattr__(request, "loras", tuple(pairs))


def shown_value(value: object) -> str:
    from diffusers_tui.engine.text import shown

    return shown(repr(value), 80)


def check_prompt_given(prompt: str) -> None:
    """A text-to-image run needs something to draw; whitespace alone is not a prompt."""
    if not prompt.strip():
        raise RequestError("prompt", "is empty: type what to draw")




@dataclass(frozen=True)
class StepSnapshot:
    """One model call of a run, as the worker thread hands it to whoever listens."""

    #: 1-based count of model calls so far.
    step: int
    #: Total model calls of the run (pipe.num_timesteps: 2N-1 for Heun and DPM2).
    total: int
    timestep: float
    #: The noise level of the sample this call saw, when the scheduler defines one.
    sigma: float | None
    elapsed_s: float
    #: The record of this step: its denoised estimate and noisy sample as latents
    #: (StepLatents), or None when no preview was due. Pixels are made from it on demand.
    latents: Any = None
    #: A decoded picture of `latents`, set only on the frames a LivePreview hands out.
    preview: Any = None
    preview_kind: PreviewKind = "x0"


@dataclass(frozen=True)
class GenerationResult:
    """What a run produced: the image (None when cancelled early), and how it went."""

    request: GenerationRequest
    image: Any
    cancelled: bool
    elapsed_s: float
    model_calls: int
    total_calls: int
    #: The last preview shown, kept so a cancelled run still has something to show.
    last_preview: Any = None
    #: Facts for the saved recipe: scheduler class and config, model id, dtype, device.
    recipe: dict[str, Any] = field(default_factory=dict)
    #: Why the run stopped before its end by itself (NaN latents), or None.
    stopped: str | None = None
    #: Every StepSnapshot that carried a preview, in order: what scrubbing, --save-every
    #: and export show. The result owns them; nothing hands them back to the engine.
    frames: tuple[StepSnapshot, ...] = ()
    #: The final latents, before the decode (a hires pass starts from them); None where there are none.
    latents: Any = None
    #: A batch's images as runs of their own (each its seed, image and recipe); `image` is then their grid.
    batch: tuple["GenerationResult", ...] = ()

    @property
    def shown_image(self) -> Any:
        """The image, or the last preview when the run was cancelled or stopped before it."""
        return self.image if self.image is not None else self.last_preview

    @property
    def calls_per_second(self) -> float:
        return self.model_calls / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class ModelSummary:
    """A loaded model as the UI and the commands see it: plain values, no torch or diffusers object."""

    name: str
    #: "text-to-image" (a pipeline) or "unet" (a bare UNet2DModel stepped by hand).
    mode: str
    native_size: tuple[int, int]
    size_multiple: int
    #: The model's own scheduler class, and the registry sampler that matches it (None: no entry does).
    #: Its list (`statuses`) starts with the "model default" entry, which a run asks for with None.
    scheduler_class: str
    default_scheduler: str | None
    #: Every registry entry, marked available or not for this model (SchedulerStatus).
    statuses: tuple[Any, ...] = ()
    #: What loading found worth saying (a fitted preview map, a default scheduler, ...).
    notes: tuple[str, ...] = ()
    #: The live preview methods this model has (none for a pixel-space model), what "auto"
    #: means on it, and how to get a TAESD decoder when it has none.
    preview_methods: tuple[str, ...] = ()
    preview_auto: str = "latent"
    preview_note: str = ""
    #: A closed vocabulary (the demo's), as (group name, words) pairs, and the sentence it
    #: was trained on; empty for a model that reads any text. See engine.vocabulary.
    vocabulary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    prompt_pattern: str = ""
    #: How A1111 prompt syntax is applied here: "sd" or "sdxl" (compel on CLIP encoders), or None.
    prompt_weighting: str | None = None
    #: What the guidance number does here: "cfg", "distilled" (Flux dev) or "none"; in words;
    #: the pipeline's own default; and whether a negative prompt is used.
    guidance: str = "cfg"
    guidance_meaning: str = "classifier-free guidance"
    guidance_default: float | None = None
    negative_prompt: bool = True
    #: Whether the pipeline rescales guided predictions (diffusers' guidance_rescale: SD 1.x/2.x, SDXL).
    guidance_rescale: bool = False
    #: Whether diffusers has a perturbed-attention guidance variant of its pipeline (SD 1.x/2.x, SDXL, SD3...).
    pag: bool = False

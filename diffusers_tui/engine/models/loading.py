"""Loading a resolved model onto its device: options, device and dtype, and one loader per source kind.

Remote code is never run; pickle weights need `allow_pickle`; every failure becomes one
ModelLoadError that says what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusers_tui.engine.errors import ModelLoadError, ModelNotFoundError, RequestError
from diffusers_tui.engine.models import families, folder_check
from diffusers_tui.engine.models.names import PICKLE_SUFFIXES, Mode, ModelSource, _read_json, describe_folder


VAE_MODES = ("full", "sliced", "tiled")


@dataclass(frozen=True)
class LoadOptions:
    """How to load any model: device, dtype, offload and the safety switches."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16 (auto on CUDA: bfloat16 for Flux/SD3/..., else float16)
    offload: str = "none"  # none | model | sequential (CUDA only)
    #: How the VAE decodes: whole images at once, one image at a time (sliced), or in
    #: overlapping tiles as well (tiled: any size fits, at slightly different pixels).
    vae: str = "full"  # full | sliced | tiled
    allow_pickle: bool = False
    config_dir: str | None = None  # for single-file checkpoints: a local diffusers folder
    safety_checker: bool = False
    #: A TAESD preview decoder folder, or a folder holding them by repo name (see preview.tiny).
    taesd_folder: str | None = None
    #: Folders where a LoRA named by its file stem is looked for, in order (see models.loras).
    lora_dirs: tuple[str, ...] = ()
    #: Folders of textual-inversion embeddings, each file a word by its stem (models.embeddings).
    embedding_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise RequestError("device", f"{self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise RequestError("dtype", f"{self.dtype!r} is not one of auto, float32, float16, bfloat16")
        if self.offload not in ("none", "model", "sequential"):
            raise RequestError("offload", f"{self.offload!r} is not one of none, model, sequential")
        if self.vae not in VAE_MODES:
            raise RequestError("vae", f"{self.vae!r} is not one of {', '.join(VAE_MODES)}")


@dataclass
class LoadedModel:
    """A model ready to run: a pipeline (text-to-image) or a UNet + scheduler (unet loop)."""

    source: ModelSource
    mode: Mode
    device: Any
    dtype: Any
    scheduler: Any  # the model's own scheduler, never stepped: configs are built from it
    pipeline: Any = None
    unet: Any = None
    #: "sd1", "sdxl", "fitted" (no published latent map) or "pixel".
    family: str = "pixel"
    #: How its recorded latents become pictures (preview.decoders.Decoders).
    decoders: Any = None
    notes: list[str] = field(default_factory=list)
    #: The registry marked available or not for this model, once the engine has worked it out.
    statuses: tuple | None = None
    #: The LoRA adapters loaded into its pipeline, by file SHA-256 -> adapter name (see models.loras).
    lora_adapters: dict[str, str] = field(default_factory=dict)
    #: The adapters and weights last set on it ((names, weights)), or None while they are off.
    lora_weights: tuple | None = None
    #: The textual-inversion embeddings loaded into it: word (lowercased) -> file SHA-256 (models.embeddings).
    embeddings: dict[str, str] = field(default_factory=dict)
    #: How many of its text encoders took each (2: an SDXL embedding, one tensor per encoder).
    embedding_encoders: dict[str, int] = field(default_factory=dict)
    #: Components its folder was saved without ([null, null]): loading, and the snippet, pass them as None.
    absent_components: tuple[str, ...] = ()
    #: How its VAE decodes: full, sliced or tiled (LoadOptions.vae); how it was offloaded.
    vae_mode: str = "full"
    offload: str = "none"
    #: Pipelines built from this one with from_pipe (image-to-image, PAG), sharing its modules: by kind.
    related_pipelines: dict[str, Any] = field(default_factory=dict)

    @property
    def original_scheduler_config(self) -> dict[str, Any]:
        return dict(self.scheduler.config)

    @property
    def native_size(self) -> tuple[int, int]:
        return families.family_of(self).native_size(self)

    @property
    def size_multiple(self) -> int:
        return families.family_of(self).size_multiple(self)


def pick_device(requested: str):
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {requested}: this torch build sees no CUDA GPU; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ModelLoadError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("--device mps: MPS is not available here; use --device cpu")
    return device


#: Pipeline families published in bfloat16: float16 overflows them (auto picks bfloat16 on CUDA).
BFLOAT16_FAMILIES = ("Flux", "StableDiffusion3", "QwenImage", "Chroma", "Sana", "HiDream", "Lumina", "CogView4",
                     "AuraFlow")


def pick_dtype(requested: str, device, pipeline_class: str = ""):
    """The dtype to load in: as asked, or for auto each family's documented one on CUDA (float32 elsewhere)."""
    import torch

    if requested == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if pipeline_class.startswith(BFLOAT16_FAMILIES) else torch.float16
    return getattr(torch, requested)


def _pipeline_class(source: ModelSource, options: LoadOptions) -> str:
    """The pipeline class a model will load as, read from its folder (or --config's), without loading it."""
    folder = Path(options.config_dir).expanduser() if source.kind == "single-file" and options.config_dir else source.path
    try:
        return str(_read_json(Path(folder) / "model_index.json").get("_class_name", ""))
    except (ModelLoadError, TypeError):
        return ""


def load(source: ModelSource, options: LoadOptions) -> LoadedModel:
    """Load a resolved model onto its device; every failure becomes a ModelLoadError."""
    from diffusers_tui.engine.runtime import quiet

    quiet()
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device, _pipeline_class(source, options))
    if options.offload != "none" and device.type != "cuda":
        raise ModelLoadError(f"--offload {options.offload} needs a CUDA device; use --offload none")
    try:
        if source.kind == "single-file":
            loaded = _load_single_file(source, options, device, dtype)
        else:
            mode, class_name = describe_folder(source.path)  # refuses pipelines that cannot run here first
            problem = folder_check.layout_problem(Path(source.path))
            if problem:
                raise ModelLoadError(f"could not load {source.name!r}: {problem}")
            if mode == "unet":
                loaded = _load_unet(source, options, device, dtype, class_name)
            else:
                loaded = _load_pipeline(source, options, device, dtype)
    except (ModelLoadError, ModelNotFoundError):
        raise
    except Exception as error:  # diffusers raises many kinds; each becomes one clear message
        raise ModelLoadError(_explain_load_failure(source, error, options)) from error
    from diffusers_tui.engine.preview.decoders import decoders_for

    loaded.decoders = decoders_for(loaded, options.taesd_folder)
    fallback = families.fallback_note(loaded.pipeline) if loaded.pipeline is not None else None
    if fallback:
        loaded.notes.append(fallback)
    return loaded


def _explain_load_failure(source: ModelSource, error: Exception, options: LoadOptions) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "custom code" in text:
        return (f"could not load {source.name!r}: it ships its own Python code, which diffusers-tui never "
                f"runs ({text})")
    if type(error).__name__ == "OutOfMemoryError":
        return (f"could not load {source.name!r}: out of memory on {options.device}; try --dtype float16 "
                "(bfloat16 for Flux, SD3, Qwen-Image), --offload model, or a smaller model")
    damaged = folder_check.damaged_weights(Path(source.path)) if source.path else None
    if damaged:  # before the safetensors message below: a cut-short file is no reason to allow pickle
        return f"could not load {source.name!r}: {damaged}; download or copy it again"
    if not options.allow_pickle and ("safetensors" in text.lower() or "use_safetensors" in text):
        return (
            f"could not load {source.name!r}: it has no .safetensors weights ({text}). "
            "Pickle weights can run code when loaded: pass --allow-pickle only if you trust them"
        )
    return f"could not load {source.name!r} from {source.path}: {type(error).__name__}: {text}"


def _common_kwargs(options: LoadOptions, dtype) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "local_files_only": True,
        # None lets diffusers prefer safetensors but fall back to pickle when allowed.
        "use_safetensors": None if options.allow_pickle else True,
    }


def _safety_kwargs(index: dict[str, Any], options: LoadOptions) -> dict[str, Any]:
    """Leave out the safety checker a folder lists, unless the user asked for it."""
    if "safety_checker" in index and not options.safety_checker:
        return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    return {}


def _absent_components(index: dict[str, Any]) -> dict[str, Any]:
    """Components the folder was saved without ([null, null] in model_index.json), passed as None.

    diffusers writes them so (SD3 saved without its T5, say) but will not load such a folder
    unless told again that they are absent.
    """
    return {name: None for name, value in index.items()
            if not name.startswith("_") and isinstance(value, list) and value == [None, None]}


def _load_pipeline(source: ModelSource, options: LoadOptions, device, dtype) -> LoadedModel:
    from diffusers import DiffusionPipeline

    import diffusers

    index = _read_json(source.path / "model_index.json")
    class_name = index.get("_class_name", "")
    if not hasattr(diffusers, class_name):
        raise ModelLoadError(
            f"{source.name!r} names the pipeline class {class_name!r}, which diffusers does not have; "
            "custom pipelines (code shipped with a model) are never run"
        )
    absent = _absent_components(index)
    kwargs = {**absent, **_common_kwargs(options, dtype), **_safety_kwargs(index, options)}
    pipe = DiffusionPipeline.from_pretrained(source.path, **kwargs)
    loaded = _finish_pipeline(source, pipe, options, device, dtype)
    loaded.absent_components = tuple(absent)
    return loaded


def _finish_pipeline(source: ModelSource, pipe, options: LoadOptions, device, dtype) -> LoadedModel:
    if families.denoiser_of(pipe) is None or getattr(pipe, "vae", None) is None:
        raise ModelLoadError(f"{source.name!r} is a {type(pipe).__name__}: diffusers-tui runs pipelines with a "
                             "denoiser (a UNet or a transformer) and a VAE")
    if families.callback_style(pipe) is None:
        raise ModelLoadError(f"{source.name!r} is a {type(pipe).__name__}, which reports no step "
                             "(no callback_on_step_end): its steps cannot be watched or cancelled")
    pipe.set_progress_bar_config(disable=True)
    _set_vae_mode(pipe.vae, options.vae)
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    return LoadedModel(source=source, mode="text-to-image", device=device, dtype=dtype,
                       scheduler=pipe.scheduler, pipeline=pipe, vae_mode=options.vae,
                       offload=options.offload)


def _set_vae_mode(vae, mode: str) -> None:
    """Slicing decodes a batch one image at a time; tiling decodes each image in overlapping tiles."""
    if mode in ("sliced", "tiled") and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if mode == "tiled":
        if not hasattr(vae, "enable_tiling"):
            raise ModelLoadError(f"this model's {type(vae).__name__} cannot decode in tiles; use --vae sliced or full")
        vae.enable_tiling()


def _load_single_file(source: ModelSource, options: LoadOptions, device, dtype) -> LoadedModel:
    import diffusers

    suffix = source.path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not options.allow_pickle:
        raise ModelLoadError(
            f"{source.path.name} is a pickle checkpoint, which can run code when loaded; "
            "convert it to .safetensors, or pass --allow-pickle if you trust it"
        )
    if not options.config_dir:
        raise ModelLoadError(
            f"{source.path.name} is a single-file checkpoint: pass --config DIR, a local diffusers "
            "folder of the same architecture (its model_index.json and component configs), "
            "since the Hub cannot be asked for one"
        )
    config_dir = Path(options.config_dir).expanduser()
    mode, class_name = describe_folder(config_dir)
    if mode != "text-to-image":
        raise ModelLoadError(f"--config {config_dir} is not a text-to-image pipeline folder")
    pipeline_class = getattr(diffusers, class_name, diffusers.StableDiffusionPipeline)
    kwargs = {"dtype": dtype, "local_files_only": True, "config": str(config_dir),
              **_safety_kwargs(_read_json(config_dir / "model_index.json"), options)}
    pipe = pipeline_class.from_single_file(str(source.path), **kwargs)
    return _finish_pipeline(source, pipe, options, device, dtype)


def _load_unet(source: ModelSource, options: LoadOptions, device, dtype, class_name: str) -> LoadedModel:
    import diffusers
    from diffusers import DDPMScheduler, UNet2DModel

    kwargs = _common_kwargs(options, dtype)
    if class_name == "UNet2DModel":  # a bare UNet folder
        unet = UNet2DModel.from_pretrained(source.path, **kwargs)
        scheduler_file = source.path / "scheduler_config.json"
        scheduler_dir, subfolder = source.path, None
    else:
        unet = UNet2DModel.from_pretrained(source.path, subfolder="unet", **kwargs)
        scheduler_file = source.path / "scheduler" / "scheduler_config.json"
        scheduler_dir, subfolder = source.path, "scheduler"
    notes = []
    if scheduler_file.exists():
        scheduler_class = getattr(diffusers, _read_json(scheduler_file).get("_class_name", ""), DDPMScheduler)
        scheduler = scheduler_class.from_pretrained(scheduler_dir, subfolder=subfolder)
    else:
        scheduler = DDPMScheduler(num_train_timesteps=1000)
        notes.append("no scheduler config found: using a default DDPMScheduler (1000 steps, linear betas)")
    unet.to(device).eval()
    return LoadedModel(source=source, mode="unet", device=device, dtype=dtype,
                       scheduler=scheduler, unet=unet, notes=notes)

"""What a model name means and how it is loaded: demo, Hub id in the local cache, folder, file.

Every kind ends in the same loader: a Hub id is first turned into its snapshot folder in
the local cache, and the built-in demo models are folders shipped inside the package.
Nothing is downloaded; remote code is never run; pickle weights need `allow_pickle`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from diffusers_tui.engine.errors import ModelLoadError, ModelNotFoundError

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_MODELS = {"demo": "demo-sd", "demo-sd": "demo-sd", "demo-ddpm": "demo-ddpm"}
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

SourceKind = Literal["demo", "hub-cache", "folder", "single-file"]
Mode = Literal["text-to-image", "unet"]


@dataclass(frozen=True)
class LoadOptions:
    """How to load any model: device, dtype, offload and the safety switches."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16 (auto: float16 on CUDA)
    offload: str = "none"  # none | model | sequential (CUDA only)
    allow_pickle: bool = False
    config_dir: str | None = None  # for single-file checkpoints: a local diffusers folder
    safety_checker: bool = False

    def __post_init__(self) -> None:
        from diffusers_tui.engine.errors import RequestError

        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise RequestError("device", f"{self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise RequestError("dtype", f"{self.dtype!r} is not one of auto, float32, float16, bfloat16")
        if self.offload not in ("none", "model", "sequential"):
            raise RequestError("offload", f"{self.offload!r} is not one of none, model, sequential")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model name: where its files are and what kind of source it is."""

    name: str
    kind: SourceKind
    path: Path
    repo_id: str | None = None
    revision: str | None = None


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
    #: "sd1", "sdxl", "fitted" (latent map fitted at load) or "pixel".
    family: str = "pixel"
    previewer: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def original_scheduler_config(self) -> dict[str, Any]:
        return dict(self.scheduler.config)

    @property
    def native_size(self) -> tuple[int, int]:
        if self.pipeline is not None:
            side = self.pipeline.unet.config.sample_size * self.pipeline.vae_scale_factor
        else:
            side = self.unet.config.sample_size
        if isinstance(side, (list, tuple)):
            return int(side[1]), int(side[0])
        return int(side), int(side)

    @property
    def size_multiple(self) -> int:
        unet = self.pipeline.unet if self.pipeline is not None else self.unet
        factor = 2 ** (len(unet.config.block_out_channels) - 1)
        if self.pipeline is not None:
            factor *= self.pipeline.vae_scale_factor
        return factor


def resolve(name: str) -> ModelSource:
    """Turn a --model value into a ModelSource, or raise ModelNotFoundError saying why."""
    name = name.strip()
    if name.lower() in DEMO_MODELS:
        folder = DEMO_DIR / DEMO_MODELS[name.lower()]
        if not (folder / "model_index.json").exists():
            raise ModelNotFoundError(
                f"the built-in model {name!r} is missing from this install ({folder}); "
                "reinstall the package, or retrain it: python -m diffusers_tui.engine.demo.train"
            )
        return ModelSource(name, "demo", folder)
    if not name or "\x00" in name:
        raise ModelNotFoundError("give a model name, folder or file (for example 'demo'); "
                                 "`diffusers-tui models` lists what is on this machine")
    path = Path(name).expanduser()
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as error:  # a name too long for the filesystem, say
        raise ModelNotFoundError(f"model {name[:80]!r}... is not a usable file name: "
                                 f"{getattr(error, 'strerror', None) or error}") from None
    if exists:
        if is_file:
            if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
                raise ModelLoadError(
                    f"{name!r} is a file but not a checkpoint ({', '.join(SINGLE_FILE_SUFFIXES)})"
                )
            return ModelSource(name, "single-file", path.resolve())
        return ModelSource(name, "folder", path.resolve())
    if _HUB_ID.match(name) and not name.startswith((".", "~")):
        return _resolve_hub_id(name)
    raise ModelNotFoundError(
        f"model {name!r} is not a built-in model, an existing folder or file, or a Hub id "
        "(org/name); `diffusers-tui models` lists what is on this machine"
    )


def _resolve_hub_id(repo_id: str) -> ModelSource:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        # local_files_only: the Hub is never contacted, HF_HOME / HF_HUB_CACHE are respected.
        folder = snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise ModelNotFoundError(
            f"model {repo_id!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}). "
            f"Download it where there is network access with:  hf download {repo_id}  "
            "(then copy the cache here, or point HF_HOME at it)"
        ) from None
    folder = Path(folder)
    return ModelSource(repo_id, "hub-cache", folder, repo_id=repo_id, revision=folder.name)


def describe_folder(folder: Path) -> tuple[Mode, str]:
    """(mode, class name) of a diffusers folder, or ModelLoadError if it is not one."""
    index = folder / "model_index.json"
    if index.exists():
        data = _read_json(index)
        unet = data.get("unet")
        if unet and unet[-1] == "UNet2DModel" and "text_encoder" not in data:
            return "unet", data.get("_class_name", "DiffusionPipeline")
        if "text_encoder" in data or "text_encoder_2" in data:
            return "text-to-image", data.get("_class_name", "DiffusionPipeline")
        raise ModelLoadError(
            f"{folder} holds a {data.get('_class_name')}, which is neither a text-to-image "
            "pipeline nor a UNet2DModel pipeline; diffusers-tui runs those two kinds"
        )
    config = folder / "config.json"
    if config.exists() and _read_json(config).get("_class_name") == "UNet2DModel":
        return "unet", "UNet2DModel"
    raise ModelLoadError(
        f"{folder} is not a diffusers model folder: it has no model_index.json (a pipeline) "
        "and no config.json of a UNet2DModel"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {path}: {error}") from None


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


def pick_dtype(requested: str, device):
    import torch

    if requested == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, requested)


def load(source: ModelSource, options: LoadOptions) -> LoadedModel:
    """Load a resolved model onto its device; every failure becomes a ModelLoadError."""
    from diffusers_tui.engine import quiet

    quiet()
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device)
    if options.offload != "none" and device.type != "cuda":
        raise ModelLoadError(f"--offload {options.offload} needs a CUDA device; use --offload none")
    try:
        if source.kind == "single-file":
            loaded = _load_single_file(source, options, device, dtype)
        else:
            mode, class_name = describe_folder(source.path)
            if mode == "unet":
                loaded = _load_unet(source, options, device, dtype, class_name)
            else:
                loaded = _load_pipeline(source, options, device, dtype)
    except (ModelLoadError, ModelNotFoundError):
        raise
    except Exception as error:  # diffusers raises many kinds; each becomes one clear message
        raise ModelLoadError(_explain_load_failure(source, error, options)) from error
    from diffusers_tui.engine.preview import previewer_for

    previewer_for(loaded)
    return loaded


def _explain_load_failure(source: ModelSource, error: Exception, options: LoadOptions) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "custom code" in text:
        return (f"could not load {source.name!r}: it ships its own Python code, which diffusers-tui never "
                f"runs ({text})")
    if type(error).__name__ == "OutOfMemoryError":
        return (f"could not load {source.name!r}: out of memory on {options.device}; try --dtype float16, "
                "--offload model, or a smaller model")
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
    kwargs = _common_kwargs(options, dtype)
    if "safety_checker" in index and not options.safety_checker:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = DiffusionPipeline.from_pretrained(source.path, **kwargs)
    return _finish_pipeline(source, pipe, options, device, dtype)


def _finish_pipeline(source: ModelSource, pipe, options: LoadOptions, device, dtype) -> LoadedModel:
    if not hasattr(pipe, "unet") or not hasattr(pipe, "vae"):
        raise ModelLoadError(f"{source.name!r} is a {type(pipe).__name__}; diffusers-tui needs a UNet + VAE pipeline")
    pipe.set_progress_bar_config(disable=True)
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    return LoadedModel(source=source, mode="text-to-image", device=device, dtype=dtype,
                       scheduler=pipe.scheduler, pipeline=pipe)


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
    kwargs = {"dtype": dtype, "local_files_only": True, "config": str(config_dir)}
    index = _read_json(config_dir / "model_index.json")
    if "safety_checker" in index and not options.safety_checker:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
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


@dataclass(frozen=True)
class ModelInfo:
    """One row of `diffusers-tui models`."""

    name: str
    kind: str  # text-to-image | unet
    source: str  # demo | hub-cache | folder
    size_bytes: int
    path: Path


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for file in files:
            try:
                total += (Path(root) / file).stat().st_size  # follows cache symlinks to blobs
            except OSError:
                pass
    return total


def _info(name: str, source: str, folder: Path) -> ModelInfo | None:
    try:
        mode, _ = describe_folder(folder)
    except ModelLoadError:
        return None
    return ModelInfo(name, mode, source, _folder_size(folder), folder)


def list_models(folders: tuple[str, ...] = ()) -> list[ModelInfo]:
    """The demo models, every diffusers model in the local HF cache, and any under `folders`."""
    found: list[ModelInfo] = []
    for name in ("demo", "demo-ddpm"):
        info = _info(name, "demo", DEMO_DIR / DEMO_MODELS[name])
        if info:
            found.append(info)
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # no cache folder yet (CacheNotFound) or unreadable: nothing to list
        cache = None
    if cache is not None:
        for repo in sorted(cache.repos, key=lambda r: r.repo_id):
            if repo.repo_type != "model":
                continue
            for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)[:1]:
                info = _info(repo.repo_id, "hub-cache", Path(revision.snapshot_path))
                if info:
                    found.append(ModelInfo(info.name, info.kind, info.source, repo.size_on_disk, info.path))
    for folder in folders:
        root = Path(folder).expanduser()
        candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for candidate in candidates:
            info = _info(str(candidate), "folder", candidate)
            if info:
                found.append(info)
    return found

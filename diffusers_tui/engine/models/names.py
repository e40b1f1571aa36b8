"""What a model name means: a built-in demo, a Hub id in the local cache, a folder, or a single file.

Every kind ends as a folder (or a checkpoint file): a Hub id is turned into its snapshot
folder in the local cache, and the built-in demo models are folders inside the package.
Nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from diffusers_tui.engine.errors import ModelLoadError, ModelNotFoundError

DEMO_DIR = Path(__file__).parents[1] / "demo"
DEMO_MODELS = {"demo": "demo-sd", "demo-sd": "demo-sd", "demo-flow": "demo-flow", "demo-ddpm": "demo-ddpm"}
#: The script that retrains each built-in model.
DEMO_TRAINERS = {"demo-flow": "python -m diffusers_tui.engine.demo.train_flow --out DIR"}

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

SourceKind = Literal["demo", "hub-cache", "folder", "single-file"]

Mode = Literal["text-to-image", "unet"]


@dataclass(frozen=True)
class ModelSource:
    """A resolved model name: where its files are and what kind of source it is."""

    name: str
    kind: SourceKind
    path: Path
    repo_id: str | None = None
    revision: str | None = None


def resolve(name: str) -> ModelSource:
    """Turn a --model value into a ModelSource, or raise ModelNotFoundError saying why."""
    name = name.strip()
    if name.lower() in DEMO_MODELS:
        folder = DEMO_DIR / DEMO_MODELS[name.lower()]
        if not (folder / "model_index.json").exists():
            raise ModelNotFoundError(
                f"the built-in model {name!r} is missing from this install ({folder}); "
                "reinstall the package, or retrain it: "
                f"{DEMO_TRAINERS.get(DEMO_MODELS[name.lower()], 'python -m diffusers_tui.engine.demo.train --out DIR')}"
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
        reason = unrunnable_reason(data)
        if reason:
            raise ModelLoadError(f"{folder} holds a {data.get('_class_name')}: {reason}")
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


#: Pipeline kinds this tool cannot run, by a word in their class name, and why.
_UNRUNNABLE = (
    ("Img2Img", "it changes a given image; diffusers-tui runs text-to-image"),
    ("Inpaint", "it fills in a masked image; diffusers-tui runs text-to-image"),
    ("Video", "it makes video; diffusers-tui makes still images"),
    ("Prior", "it is the first stage of a two-stage model: run the combined pipeline's decoder stage instead"),
    ("Kandinsky", "a two-stage (prior + decoder) model, which diffusers-tui does not run"),
    ("Wuerstchen", "a two-stage (prior + decoder) model, which diffusers-tui does not run"),
    ("StableCascade", "a two-stage (prior + decoder) model, which diffusers-tui does not run"),
    ("Upscale", "it upscales a given image; diffusers-tui runs text-to-image"),
)


def unrunnable_reason(index: dict[str, Any]) -> str | None:
    """Why the pipeline a model_index.json describes cannot run here (None when it may)."""
    class_name = str(index.get("_class_name", ""))
    for word, reason in _UNRUNNABLE:
        if word in class_name:
            return reason
    scheduler = index.get("scheduler")
    if isinstance(scheduler, list) and scheduler and scheduler[-1] == "ScoreSdeVeScheduler":
        return ("its ScoreSdeVeScheduler samples by a predictor-corrector loop, not the step() the UNet loop "
                "calls")
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {path}: {error}") from None

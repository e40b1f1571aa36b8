"""Every diffusers model on this machine: the demos, the local Hugging Face cache, and folders named in settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from diffusers_tui.engine.errors import ModelLoadError
from diffusers_tui.engine.models.names import DEMO_DIR, DEMO_MODELS, describe_folder


@dataclass(frozen=True)
class ModelInfo:
    """One row of `diffusers-tui models`."""

    name: str
    kind: str  # text-to-image | unet
    source: str  # demo | hub-cache | folder
    size_bytes: int
    path: Path
    #: Why it cannot run here ("" when it can): listed, so a missing model is never a mystery.
    reason: str = ""


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
    except ModelLoadError as error:
        if not (folder / "model_index.json").exists():
            return None  # not a diffusers pipeline at all
        reason = str(error).partition(": ")[2] or str(error)
        return ModelInfo(name, "cannot run", source, _folder_size(folder), folder, reason)
    return ModelInfo(name, mode, source, _folder_size(folder), folder)


def list_models(folders: tuple[str, ...] = ()) -> list[ModelInfo]:
    """The demo models, every diffusers model in the local HF cache, and any under `folders`."""
    found: list[ModelInfo] = []
    for name in ("demo", "demo-flow", "demo-ddpm"):
        info = _info(name, "demo", DEMO_DIR / DEMO_MODELS[name])
        if info:
            found.append(info)
    try:
        from huggingface_hub import constants, scan_cache_dir

        # Named here: scan_cache_dir's own default is the folder as it was when its module was first imported.
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # no cache folder yet (CacheNotFound) or unreadable: nothing to list
        cache = None
    if cache is not None:
        for repo in sorted(cache.repos, key=lambda r: r.repo_id):
            if repo.repo_type != "model":
                continue
            for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)[:1]:
                info = _info(repo.repo_id, "hub-cache", Path(revision.snapshot_path))
                if info:
                    found.append(ModelInfo(info.name, info.kind, info.source, repo.size_on_disk, info.path,
                                           info.reason))
    for folder in folders:
        root = Path(folder).expanduser()
        candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for candidate in candidates:
            info = _info(str(candidate), "folder", candidate)
            if info:
                found.append(info)
    return found

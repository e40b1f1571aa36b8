"""What is wrong with a damaged model folder, in its own terms: a missing component, a config that is not an
object or holds an impossible size, weights cut short. Read before loading (the layout and configs) and
after a failed load (the weights' headers), so the message names the file instead of diffusers' guess."""

from __future__ import annotations

import json
from pathlib import Path

from diffusers_tui.engine.text import shown

#: A safetensors header larger than this is not one (real headers are a few MB at most).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: The config files a diffusers component folder may hold.
CONFIG_NAMES = ("config.json", "scheduler_config.json")
#: Components a folder may list and leave out: the loader passes None for them unless asked (loading.py).
OPTIONAL_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")


def layout_problem(folder: Path) -> str | None:
    """The first problem in a diffusers folder's components and their configs, or None."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # no index (a bare model folder), or one the loader reports itself
    if not isinstance(index, dict):
        return None
    for name, value in index.items():
        if name.startswith("_") or not (isinstance(value, list) and len(value) == 2
                                        and all(isinstance(part, str) for part in value)):
            continue
        component = folder / name
        if not component.is_dir() and name in OPTIONAL_COMPONENTS:
            continue
        if not component.is_dir():
            return f"its {name}/ folder is missing ({shown(str(component))}), which model_index.json lists"
        problem = _config_problem(component, name)
        if problem:
            return problem
    return None


def _config_problem(component: Path, name: str) -> str | None:
    config = next((component / file for file in CONFIG_NAMES if (component / file).is_file()), None)
    if config is None:
        return None  # tokenizers and feature extractors keep other files
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return f"{name}/{config.name} is not valid JSON"
    if not isinstance(parsed, dict):
        return f"{name}/{config.name} is not a JSON object (it holds a {type(parsed).__name__})"
    size = parsed.get("sample_size")
    if size is not None and not _is_size(size):
        return f"{name}/{config.name}: sample_size {shown(repr(size), 40)} is not a positive size"
    return None


def _is_size(size) -> bool:
    sides = size if isinstance(size, list) and len(size) == 2 else [size]
    return all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in sides)


def damaged_weights(path: Path) -> str | None:
    """The first .safetensors file (under a folder, or the file itself) that is cut short or has a damaged
    header, with what is wrong; None when every one is whole."""
    files = [path] if path.is_file() else sorted(path.rglob("*.safetensors"))
    for file in files:
        problem = _safetensors_problem(file)
        if problem:
            name = file.name if path.is_file() else str(file.relative_to(path))
            return f"{shown(name)} {problem}"
    return None


def _safetensors_problem(file: Path) -> str | None:
    try:
        size = file.stat().st_size
        with open(file, "rb") as handle:
            head = handle.read(8)
            header_bytes = int.from_bytes(head, "little") if len(head) == 8 else None
            if header_bytes is None:
                return "is empty or cut short before its header"
            if header_bytes > min(size - 8, MAX_HEADER_BYTES):
                return "is cut short or damaged: its header runs past the end of the file"
            header = json.loads(handle.read(header_bytes))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return "has a damaged header"
    if not isinstance(header, dict):
        return "has a damaged header"
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2 and isinstance(entry["data_offsets"][1], int)]
    needed = 8 + header_bytes + max(ends, default=0)
    if needed > size:
        return f"is cut short: it holds {size:,} bytes of the {needed:,} its header describes"
    return None

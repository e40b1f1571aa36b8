"""What was saved before: the index of an outputs folder, newest first.

Every line of `index.jsonl` is untrusted: one that does not parse, or that points outside
its folder, is counted and skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusers_tui.engine.files.outputs import INDEX_NAME


@dataclass(frozen=True)
class HistoryEntry:
    """One line of index.jsonl: an image or a comparison folder, with what made it."""

    path: Path  # the PNG (for a comparison: its grid.png)
    kind: str  # "image" or "comparison"
    time: str
    prompt: str
    model: str | None
    scheduler: str | None
    steps: Any
    seed: Any

    @property
    def recipe_path(self) -> Path:
        """The PNG whose recipe `l` loads: the image, or a comparison's first run."""
        if self.kind != "comparison":
            return self.path
        runs = sorted(p for p in self.path.parent.glob("*.png") if p.name != "grid.png")
        return runs[0] if runs else self.path


@dataclass
class History:
    """The entries of one outputs folder, newest first, and how many lines were unreadable."""

    entries: list[HistoryEntry] = field(default_factory=list)
    skipped: int = 0


def read_history(outputs_dir: str | os.PathLike) -> History:
    """Every readable line of `outputs_dir/index.jsonl`, newest first (a missing index is empty)."""
    root = Path(outputs_dir).expanduser()
    history = History()
    try:
        lines = (root / INDEX_NAME).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return history
    for line in lines:
        try:
            data = json.loads(line)
            relative = Path(data["path"])
        except (ValueError, KeyError, TypeError):
            history.skipped += 1
            continue
        path = (root / relative).resolve()
        if relative.is_absolute() or not path.is_relative_to(root.resolve()):
            history.skipped += 1  # an index line never points outside its folder
            continue
        comparison = data.get("kind") == "comparison"
        steps = data.get("steps")
        history.entries.append(HistoryEntry(
            path=path / "grid.png" if comparison else path,
            kind="comparison" if comparison else "image",
            time=str(data.get("time", "")),
            prompt=str(data.get("prompt", "")),
            model=data.get("model"),
            scheduler=", ".join(data.get("schedulers", [])) if comparison else data.get("scheduler"),
            steps=",".join(map(str, steps)) if isinstance(steps, list) else steps,
            seed=data.get("seed"),
        ))
    history.entries.reverse()
    return history

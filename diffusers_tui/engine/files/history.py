"""What was saved before: the index of an outputs folder, newest first.

Every line of `index.jsonl` is untrusted: one that does not parse, holds a field of the
wrong type, is overlong, or points outside its folder, is counted and skipped. Lines are
split on "\n" alone (a prompt may hold U+2028), and read from the end of the file, so the
newest appear first however long the index has grown.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from diffusers_tui.engine.errors import UnreadableFileError
from diffusers_tui.engine.files.outputs import INDEX_NAME
from diffusers_tui.engine.files.untrusted import open_regular


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
        runs = sorted(p for p in self.path.parent.glob("[0-9]*.png"))  # the runs, not the grid or the figures
        return runs[0] if runs else self.path


@dataclass
class History:
    """The entries of one outputs folder, newest first, and how many lines were unreadable."""

    entries: list[HistoryEntry] = field(default_factory=list)
    skipped: int = 0
    #: Why the index itself could not be read (a FIFO, say), or None.
    problem: str | None = None


#: An index line longer than this is not one this tool wrote (a prompt is at most 10,000 characters).
MAX_LINE_BYTES = 256 * 1024
_BLOCK = 1024 * 1024


def read_history(outputs_dir: str | os.PathLike) -> History:
    """Every readable line of `outputs_dir/index.jsonl`, newest first (a missing index is empty)."""
    history = History()
    for page in history_pages(outputs_dir):
        history.entries += page.entries
        history.skipped += page.skipped
        history.problem = page.problem
    return history


def history_pages(outputs_dir: str | os.PathLike, page_size: int = 500) -> Iterator[History]:
    """The history in pages of `page_size` entries, newest first, read from the index's end.

    The first page of a 50 MB index comes back after one block is read, not the whole file.
    """
    root = Path(outputs_dir).expanduser()
    resolved_root = root.resolve()
    page = History()
    try:
        fd = open_regular(root / INDEX_NAME, "history index")
    except UnreadableFileError as error:
        if (root / INDEX_NAME).exists() or (root / INDEX_NAME).is_symlink():
            page.problem = str(error)
            yield page
        return
    with os.fdopen(fd, "rb") as handle:
        for line in _lines_from_the_end(handle, page):
            entry = _entry(line, root, resolved_root)
            if entry is None:
                page.skipped += 1
                continue
            page.entries.append(entry)
            if len(page.entries) >= page_size:
                yield page
                page = History()
    if page.entries or page.skipped:
        yield page


def _lines_from_the_end(handle, page: History) -> Iterator[bytes]:
    """The file's lines, last first, split on b"\n" alone; overlong lines are counted in `page` and skipped."""
    position = handle.seek(0, os.SEEK_END)
    tail = b""  # the start of the line that the block before will finish
    overlong = False
    while position > 0:
        size = min(_BLOCK, position)
        position -= size
        handle.seek(position)
        block = handle.read(size)
        parts = (block if overlong else block + tail).split(b"\n")
        tail = parts[0]
        for line in reversed(parts[1:]):
            if overlong:
                overlong = False  # this one is the overlong line's end: already counted
                page.skipped += 1
                continue
            if line.strip():
                yield line
        if len(tail) > MAX_LINE_BYTES:
            overlong, tail = True, b""
    if overlong:
        page.skipped += 1
    elif tail.strip():
        yield tail


def _entry(line: bytes, root: Path, resolved_root: Path) -> HistoryEntry | None:
    """One index line as an entry, or None when any part of it is not what this tool writes."""
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        data = json.loads(line.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    relative_text = data.get("path")
    if not isinstance(relative_text, str) or not relative_text or "\x00" in relative_text:
        return None
    relative = Path(relative_text)
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    if relative.is_absolute() or not path.is_relative_to(resolved_root):
        return None  # an index line never points outside its folder
    comparison = data.get("kind") == "comparison"
    schedulers = data.get("schedulers", []) if comparison else data.get("scheduler")
    steps, seed = data.get("steps"), data.get("seed")
    if comparison:
        if not (isinstance(schedulers, list) and all(isinstance(name, str) for name in schedulers)):
            return None
        schedulers = ", ".join(schedulers)
    if not all(isinstance(data.get(key), (str, type(None))) for key in ("prompt", "model", "time")) \
            or not isinstance(schedulers, (str, type(None))) or not _plain_number(seed) \
            or not (_plain_number(steps) or (isinstance(steps, list) and all(map(_plain_number, steps)))):
        return None
    return HistoryEntry(
        path=path / "grid.png" if comparison else path,
        kind="comparison" if comparison else "image",
        time=data.get("time") or "",
        prompt=data.get("prompt") or "",
        model=data.get("model"),
        scheduler=schedulers,
        steps=",".join(map(str, steps)) if isinstance(steps, list) else steps,
        seed=seed,
    )


def _plain_number(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))

"""Keeping an outputs folder sound across crashes: stale temporary files, saves cut short, private folders.

A save (files/outputs.py) first writes `.NNNNN-....unfinished` beside its image (what its index line will
say, and how many step snapshots it will write) and removes it once the index line is
written. A process killed in between leaves that note behind; the next start finds it,
adds the missing index line, and says what it found. Temporary `.saving-*` files older
than an hour belong to no running save and are removed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Any

from diffusers_tui.engine.errors import OutputError, UserFacingError
from diffusers_tui.engine.files.outputs import INDEX_NAME, NUMBERED, TEMP_PREFIX, UNFINISHED_SUFFIX, append_index
from diffusers_tui.engine.files.untrusted import read_bounded
from diffusers_tui.engine.text import shown

STALE_AFTER_S = 3600
#: Run folders are looked into only in day folders changed this recently: a start-up never walks
#: a year of outputs, and a killed save's day folder changed when the save began.
RECENT_DAYS_S = 7 * 24 * 3600
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def tidy(outputs_dir: str | os.PathLike, now: float | None = None) -> list[str]:
    """Remove stale temporary files and finish saves that a killed process left; returns what was found."""
    root = Path(outputs_dir).expanduser()
    now = time.time() if now is None else now
    found: list[str] = []
    removed = 0
    for folder in _folders(root, now):
        try:
            names = list(os.scandir(folder))
        except OSError:
            continue
        for item in names:
            try:
                if item.name.startswith(TEMP_PREFIX) and item.is_file(follow_symlinks=False) \
                        and now - item.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S:
                    os.unlink(item.path)
                    removed += 1
                elif item.name.startswith(".") and item.name.endswith(UNFINISHED_SUFFIX):
                    line = _finish(Path(item.path), root, now)
                    if line:
                        found.append(line)
            except OSError:
                continue
    if removed:
        found.append(f"removed {removed} temporary file{'s' if removed != 1 else ''} left by interrupted saves "
                     f"in {shown(root)}")
    return found


def _folders(root: Path, now: float):
    """The folders saves write into: the outputs folder, its day folders and the run folders of recent days."""
    yield root
    try:
        days = [entry for entry in os.scandir(root) if _DAY.match(entry.name) and entry.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for day in days:
        yield Path(day.path)
        try:
            if now - day.stat(follow_symlinks=False).st_mtime > RECENT_DAYS_S:
                continue
            runs = [entry for entry in os.scandir(day.path)
                    if NUMBERED.match(entry.name) and entry.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for run in runs:
            yield Path(run.path)


def _finish(note: Path, root: Path, now: float) -> str | None:
    """Add the index line an interrupted save never wrote, and describe what it left."""
    try:
        body = json.loads(read_bounded(note, 512 * 1024, "unfinished-save note"))
        entry, expected, pid = body["index_entry"], int(body.get("expected_steps", 0)), body.get("pid")
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ValueError
    except (ValueError, KeyError, TypeError, RecursionError, UserFacingError, OSError):
        note.unlink(missing_ok=True)  # a note this tool cannot read finishes nothing
        return None
    if body.get("host") == socket.gethostname() and _alive(pid) and now - note.stat().st_mtime < STALE_AFTER_S:
        return None  # that save is still going on
    image = note.with_name(note.name[1:].removesuffix(UNFINISHED_SUFFIX) + ".png")
    if not image.is_file():
        note.unlink(missing_ok=True)
        return None
    steps_folder = image.with_suffix("")
    written = len([p for p in steps_folder.glob("step_*.png")]) if steps_folder.is_dir() else 0
    what = f"{written} of {expected} step snapshots, no index line" if expected else "no index line"
    entry["interrupted"] = what
    if not _listed(root, entry["path"]):
        append_index(root, entry)
    note.unlink(missing_ok=True)
    return f"{shown(image.name)}: image saved, {what} (the save was interrupted); its history line is added now"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _listed(root: Path, relative: str) -> bool:
    """True when the index's last 64 KB already name `relative` (killed just after writing it)."""
    try:
        with open(root / INDEX_NAME, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 65536))
            return json.dumps(relative, ensure_ascii=False).encode("utf-8") in handle.read()
    except OSError:
        return False


def private_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder only this user can use: created 0700, or refused when someone else could plant files in it."""
    folder = Path(path)
    try:
        folder.mkdir(mode=0o700, parents=False)
    except FileExistsError:
        pass
    except OSError as error:
        raise OutputError(f"cannot create the private folder {shown(folder)}: {shown(error.strerror or error)}") \
            from None
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{shown(folder)} is not a folder (a symlink or file put there): remove it, or set TMPDIR "
                          "to a folder of your own")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise OutputError(f"{shown(folder)} belongs to another user (uid {info.st_uid}): it cannot be trusted with "
                          "your images; set TMPDIR to a folder of your own")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)  # ours, but opened to others: close it
    return folder

"""Saving what the user keeps: numbered PNGs with their recipe, step snapshots, an index.

Names are `outputs/YYYY-MM-DD/NNNNN-<scheduler>-<steps>-<seed>.png`. A file is written
to a temporary name and then hard-linked into place, which fails instead of replacing
when another process took that number first; then the next number is tried. Nothing
is ever overwritten, and nothing the user typed becomes part of a path.
"""

from __future__ import annotations

import datetime as _dt
import errno
import functools
import json
import os
import re
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.files.recipe import png_info
from diffusers_tui.engine.preview import full_picture

INDEX_NAME = "index.jsonl"
UNFINISHED_SUFFIX = ".unfinished"
NUMBERED = re.compile(r"^(\d{5,})-")


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe, lower-case rendering: only a-z, 0-9 and single dashes."""
    text = text.lower().replace("++", "pp").replace("+", "p")
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:limit].strip("-") or "default"


def next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


def _claim(folder: Path, stem_suffix: str, suffix: str, temp_path: Path) -> Path:
    """Link `temp_path` to the next free NNNNN name in `folder`; never replaces a file."""
    start = next_number(folder)
    names = (f"{number:05d}-{stem_suffix}{suffix}" for number in range(start, start + 10_000))
    return link_to_free_name(temp_path, folder, names)


def link_to_free_name(temp_path: Path, folder: Path, names) -> Path:
    """Give `temp_path` the first of `names` not taken in `folder`; never replaces a file."""
    for name in names:
        final = folder / name
        try:
            os.link(temp_path, final)  # atomic, and fails if the name exists
            return final
        except FileExistsError:
            continue
        except OSError:
            # Filesystems without hard links: reserve the name exclusively, then replace it.
            try:
                fd = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            os.replace(temp_path, final)
            return final
    raise OutputError(f"no free file name in {folder}")


@functools.cache
def file_mode() -> int:
    """The mode a new file gets under this process's umask (mkstemp alone would give 0600)."""
    mask = os.umask(0o022)  # reading the umask means setting it: once, and put straight back
    os.umask(mask)
    return 0o666 & ~mask


TEMP_PREFIX = ".saving-"


def temp_file(folder: Path, suffix: str) -> tuple[int, Path]:
    """A new temporary file in `folder` for an atomic save, with the mode an ordinary file would get."""
    fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, file_mode())  # others in the group read shared outputs as they read the index
    except OSError:
        pass
    return fd, Path(temp_name)


def write_png_atomically(image, folder: Path, stem_suffix: str, pnginfo=None) -> Path:
    fd, temp_path = temp_file(folder, ".png")
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", pnginfo=pnginfo)
            handle.flush()
            os.fsync(handle.fileno())
        return _claim(folder, stem_suffix, ".png", temp_path)
    finally:
        temp_path.unlink(missing_ok=True)


def append_index(outputs: Path, entry: dict[str, Any]) -> None:
    """Append one whole JSON line to the index, or raise OSError and leave the index as it was.

    Under an exclusive lock on an O_APPEND file: short writes are continued; when the disk
    fills part way, the part written is cut off again, so the next line is never glued
    onto a torn one. A torn line left by a killed process is ended before this one.
    """
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(outputs / INDEX_NAME, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                 file_mode())
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "the index is not a regular file", str(outputs / INDEX_NAME))
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # Windows: O_APPEND alone
            pass
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        try:
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)


def save_result(result, outputs_dir: str | os.PathLike, snapshots: list | None = None,
                today: _dt.date | None = None) -> Path:
    """Save a run's image (and optionally its step previews); returns the PNG path.

    `snapshots` are StepSnapshots whose previews go into a run folder named like the
    image: `step_0050.png`, ... Raises OutputError when the folder cannot be written
    (nothing half-written is left behind under a final name; the caller still holds
    the image), or when the image was saved but its steps or index line were not.
    """
    image = result.shown_image
    if image is None:
        raise OutputError("nothing to save: the run was cancelled before its first preview")
    request, recipe = result.request, dict(result.recipe)
    recipe["cancelled"] = result.cancelled
    if result.stopped:
        recipe["stopped"] = result.stopped
    outputs = Path(outputs_dir).expanduser()
    folder = outputs / (today or _dt.date.today()).isoformat()
    stem_suffix = f"{slug(recipe.get('scheduler_label') or recipe.get('scheduler_name') or recipe.get('scheduler_class', ''))}-{request.steps}-{request.seed}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = write_png_atomically(image, folder, stem_suffix, png_info(request, recipe))
    except OSError as error:
        raise OutputError(f"could not save into {outputs}: {describe_os_error(error)}") from error
    entry = {
        "path": str(path.relative_to(outputs)),
        "steps_folder": str(path.with_suffix("").relative_to(outputs)) if snapshots else None,
        "time": _dt.datetime.now().isoformat(timespec="seconds"),
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "model": recipe.get("model"),
        "scheduler": recipe.get("scheduler_label") or recipe.get("scheduler_name") or recipe.get("scheduler_class"),
        "steps": request.steps,
        "guidance": request.guidance,
        "seed": request.seed,
        "width": recipe.get("width"),
        "height": recipe.get("height"),
        "cancelled": result.cancelled,
    }
    problems = []
    try:
        # Until the index line is written, a note beside the image says what is missing,
        # so a killed save is found and finished at the next start (files/upkeep.py).
        note = write_unfinished_note(path, entry, len(snapshots or ()))
    except OSError:
        note = None
    written = 0
    try:
        if snapshots:
            try:
                steps_folder = path.with_suffix("")
                steps_folder.mkdir()
                for snapshot in snapshots:
                    # Full size, whatever the live preview used: decoded one at a time as it is written.
                    write_into_own_folder(full_picture(snapshot), steps_folder / f"step_{snapshot.step:04d}.png")
                    written += 1
            except OSError as error:
                problems.append(f"only {written} of its {len(snapshots)} step snapshots ({describe_os_error(error)})")
    finally:
        # Ctrl+C among the step snapshots still ends with the image's index line, saying what is missing.
        if snapshots and written < len(snapshots):
            entry["interrupted"] = f"{written} of {len(snapshots)} step snapshots"
        try:
            append_index(outputs, entry)
            if note is not None:
                note.unlink(missing_ok=True)
        except OSError as error:
            problems.append(f"not its line in {INDEX_NAME} ({describe_os_error(error)}; it is added at the next "
                            "start that can write there)")
    if problems:
        raise OutputError(f"saved {path}, but {' and '.join(problems)}", saved=path)
    return path


def unfinished_note_path(image: Path) -> Path:
    return image.with_name(f".{image.stem}{UNFINISHED_SUFFIX}")


def write_unfinished_note(image: Path, index_entry: dict[str, Any], expected_steps: int) -> Path:
    """Say, beside a just-claimed image, what its save still has to write."""
    note = unfinished_note_path(image)
    body = {"pid": os.getpid(), "host": socket.gethostname(), "expected_steps": expected_steps,
            "index_entry": index_entry}
    fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle, ensure_ascii=False)
    return note


def describe_os_error(error: OSError) -> str:
    """The reason without Python's decoration: 'No space left on device', 'Permission denied'."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{reason} ({error.filename})" if error.filename else reason


def write_into_own_folder(image, path: Path) -> None:
    """Write a PNG (a PIL image) or bytes into a folder this process just created."""
    fd, temp_path = temp_file(path.parent, path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(image, bytes):
                handle.write(image)
            else:
                image.save(handle, format="PNG")
        os.replace(temp_path, path)  # the folder is new and ours alone: nothing to overwrite
    finally:
        temp_path.unlink(missing_ok=True)  # a full disk leaves no empty temporary file behind


def claim_folder(parent: Path, stem_suffix: str) -> Path:
    """Create the next free `NNNNN-<stem_suffix>` folder in `parent`; never reuses one."""
    number = next_number(parent)
    for _ in range(10_000):
        folder = parent / f"{number:05d}-{stem_suffix}"
        try:
            folder.mkdir()  # atomic: fails if another process took the number
            return folder
        except FileExistsError:
            number += 1
    raise OutputError(f"no free folder name in {parent}")

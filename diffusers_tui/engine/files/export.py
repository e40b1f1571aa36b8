"""The denoising as files: an animated WebP (APNG where Pillow lacks WebP) and a contact sheet.

Each frame is a step preview scaled up (nearest, so a 64 px latent preview stays crisp)
with its step, timestep and sigma written under it; the last frame is the final image.
Both files go into the run's folder next to its PNG, under names never used before.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.files.outputs import describe_os_error, link_to_free_name, temp_file
from diffusers_tui.engine.preview import full_picture

#: Frames are drawn at least this wide; labels need the room.
MIN_SIDE = 256
LABEL_HEIGHT = 18
#: A 1000-step run keeps every frame in the animation only up to this many (evenly picked).
MAX_ANIMATION_FRAMES = 240
MAX_SHEET_FRAMES = 64
#: The whole animation lasts about this long, each frame at least FRAME_MS_MIN.
ANIMATION_SECONDS = 6.0
FRAME_MS_MIN = 40


@dataclass(frozen=True)
class Exported:
    """What export_denoising wrote."""

    animation: Path
    contact_sheet: Path
    frames: int  # frames in the animation (previews picked, plus the final image)


def pick(items: list, limit: int) -> list:
    """At most `limit` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= limit:
        return list(items)
    step = (len(items) - 1) / (limit - 1)
    return [items[round(i * step)] for i in range(limit)]


def labelled_frames(snapshots: list, final_image, limit: int) -> list:
    """RGB frames, each scaled up with a label strip: the picked previews, then the final image."""
    from PIL import Image, ImageDraw

    # Only the picked steps are decoded, each in full.
    shown = [(full_picture(s), _label(s)) for s in pick(list(snapshots), limit - 1)]
    if final_image is not None:
        shown.append((final_image, "final image"))
    if not shown:
        raise OutputError("nothing to export: this run kept no previews (preview method 'none')")
    width, height = final_image.size if final_image is not None else shown[0][0].size
    scale = max(1, math.ceil(MIN_SIDE / max(width, height)))
    size = (width * scale, height * scale)
    frames = []
    for image, label in shown:
        frame = Image.new("RGB", (size[0], size[1] + LABEL_HEIGHT), "black")
        frame.paste(image.convert("RGB").resize(size, Image.NEAREST), (0, 0))
        ImageDraw.Draw(frame).text((4, size[1] + 3), label, fill="white")
        frames.append(frame)
    return frames


def _label(snapshot) -> str:
    sigma = f"  sigma {snapshot.sigma:.3f}" if snapshot.sigma is not None else ""
    return f"step {snapshot.step}/{snapshot.total}  t={snapshot.timestep:.0f}{sigma}"


def contact_sheet(frames: list):
    """The frames in a grid, left to right, top to bottom."""
    from PIL import Image

    columns = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / columns)
    width, height = frames[0].size
    sheet = Image.new("RGB", (columns * width, rows * height), "black")
    for index, frame in enumerate(frames):
        sheet.paste(frame, ((index % columns) * width, (index // columns) * height))
    return sheet


def animation_format() -> str:
    from PIL import features

    return "webp" if features.check("webp") else "png"  # APNG: Pillow always writes it


def export_denoising(snapshots: list, final_image, folder: str | os.PathLike) -> Exported:
    """Write `folder/denoising.webp` (or .png, APNG) and `folder/contact-sheet.png`."""
    folder = Path(folder)
    animation_frames = labelled_frames(snapshots, final_image, MAX_ANIMATION_FRAMES)
    sheet_frames = labelled_frames(snapshots, final_image, MAX_SHEET_FRAMES)
    duration = max(FRAME_MS_MIN, round(ANIMATION_SECONDS * 1000 / len(animation_frames)))
    kind = animation_format()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        options = {"lossless": True} if kind == "webp" else {}
        animation = _write_new(folder, f"denoising.{kind}", lambda handle: animation_frames[0].save(
            handle, format=kind.upper(), save_all=True, append_images=animation_frames[1:], duration=duration,
            loop=0, **options))
        sheet = _write_new(folder, "contact-sheet.png",
                           lambda handle: contact_sheet(sheet_frames).save(handle, format="PNG"))
    except OSError as error:
        raise OutputError(f"could not export into {folder}: {describe_os_error(error)}") from error
    return Exported(animation, sheet, len(animation_frames))


def _write_new(folder: Path, name: str, write) -> Path:
    """Write through a temporary file, then link it to `name` (or name-2, -3, ...): never replaces."""
    stem, suffix = os.path.splitext(name)
    fd, temp = temp_file(folder, suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        names = (name if number == 1 else f"{stem}-{number}{suffix}" for number in range(1, 10_000))
        return link_to_free_name(temp, folder, names)
    finally:
        temp.unlink(missing_ok=True)

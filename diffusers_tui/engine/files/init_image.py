"""An img2img run's init image: read as an untrusted file, resized as A1111's "Just resize", hashed for the recipe."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from diffusers_tui.engine.errors import RequestError, UnreadableFileError
from diffusers_tui.engine.files.untrusted import open_regular
from diffusers_tui.engine.text import shown

#: What A1111 lays a transparent init image on (its img2img_background_color setting's default).
BACKGROUND = "#ffffff"


@dataclass(frozen=True)
class InitImage:
    """The init image at the run's size, and where it came from."""

    #: RGB, exactly the run's width and height.
    image: object
    path: str
    sha256: str
    #: Its own size, before the resize.
    original_size: tuple[int, int]

    @property
    def resize_note(self) -> str | None:
        """What the resize did, where it did anything (A1111's "Just resize": stretched, not cropped)."""
        return _resize_note(self.original_size, self.image.size)


def load(path: str, width: int, height: int) -> InitImage:
    """The picture at `path` in RGB (transparency laid on white), resized to width x height with Lanczos;
    RequestError("init_image") names what is wrong with the file."""
    from PIL import Image

    from diffusers_tui.engine.files.untrusted import open_picture

    try:
        picture = open_picture(path, background=BACKGROUND)
        digest = _sha256(path)
    except UnreadableFileError as error:
        fix = "" if "give" in str(error) else "; give a PNG or JPEG picture"
        raise RequestError("init_image", f"{error}{fix}") from None
    original = picture.size
    if picture.size != (width, height):
        picture = picture.resize((width, height), resample=Image.LANCZOS)
    return InitImage(picture, str(Path(path).resolve()), digest, original)


def _sha256(path: str) -> str:
    import os

    digest = hashlib.sha256()
    fd = open_regular(path, "init image")
    try:
        with os.fdopen(fd, "rb", closefd=True) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise UnreadableFileError(f"cannot read init image {shown(path)}: {shown(error.strerror or error)}") from None
    return digest.hexdigest()


def init_image_note(request, summary) -> str | None:
    """What a request's init image will go through before the run (its resize), or None; a picture that cannot
    be read says so when the run starts."""
    if request.init_image is None or summary is None:  # no model loaded yet: the run itself will say
        return None
    from PIL import Image

    native_w, native_h = summary.native_size
    width, height = request.width or native_w, request.height or native_h
    try:
        fd = open_regular(request.init_image, "init image")
        import os

        with os.fdopen(fd, "rb", closefd=True) as handle, Image.open(handle) as picture:
            size = picture.size  # the header only: nothing is decoded
    except Exception:  # noqa: BLE001 - any unreadable file: the run names the problem in one line
        return None
    return _resize_note(size, (width, height))


def _resize_note(original: tuple[int, int], size: tuple[int, int]) -> str | None:
    if tuple(original) == tuple(size):
        return None
    return (f"init image {original[0]}x{original[1]} resized to {size[0]}x{size[1]} (Lanczos, stretched to fit, "
            "as A1111's \"Just resize\")")

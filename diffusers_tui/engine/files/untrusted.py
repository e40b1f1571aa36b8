"""Reading files this tool did not write itself: regular files only, bounded in size, never decoded whole.

A FIFO or a device would block a read for ever or hand out gigabytes, a PNG may hold
400 million pixels behind 400 KB, and text may nest without end. Every such file is
opened without blocking (a FIFO would wait for a writer), checked to
be a regular file, and read up to a cap; what goes wrong is an UnreadableFileError
whose message names the file and the problem.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
import zlib
from pathlib import Path

from diffusers_tui.engine.errors import UnreadableFileError
from diffusers_tui.engine.text import shown

#: Pillow's own bounds on PNG text (PngImagePlugin.MAX_TEXT_CHUNK and MAX_TEXT_MEMORY).
MAX_TEXT_CHUNK = 1024 * 1024
MAX_TEXT_MEMORY = 64 * MAX_TEXT_CHUNK
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: A picture shown in history is decoded only below this many pixels (Pillow warns at 89 M).
MAX_PICTURE_PIXELS = 64 * 1024 * 1024


def open_regular(path: str | os.PathLike, what: str = "file") -> int:
    """A read-only descriptor of `path`, refused unless it is a regular file. The caller closes it."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait for one for ever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise UnreadableFileError(f"cannot read {what} {shown(path)}: {shown(error.strerror or error)}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        os.close(fd)
        raise UnreadableFileError(f"cannot read {what} {shown(path)}: {shown(error.strerror or error)}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise UnreadableFileError(f"{what} {shown(path)} is {kind}, not a regular file: give the path of a file")
    return fd


def read_bounded(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The whole of a regular file no longer than `limit` bytes."""
    fd = open_regular(path, what)
    try:
        with os.fdopen(fd, "rb", closefd=True) as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise UnreadableFileError(f"cannot read {what} {shown(path)}: {shown(error.strerror or error)}") from None
    if len(data) > limit:
        raise UnreadableFileError(f"{what} {shown(path)} is larger than {limit // 1024} KiB: "
                                  "it is not one this tool wrote; give the right file")
    return data


def png_text(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG, read without decoding a single pixel.

    Each chunk is bounded as Pillow bounds it; the image data is skipped, not read.
    """
    fd = open_regular(path, "PNG")
    try:
        with os.fdopen(fd, "rb", closefd=True) as handle:
            return _walk_chunks(handle, path)
    except OSError as error:
        raise UnreadableFileError(f"cannot read PNG {shown(path)}: {shown(error.strerror or error)}") from None


def _walk_chunks(handle, path) -> dict[str, str]:
    if handle.read(8) != PNG_SIGNATURE:
        raise UnreadableFileError(f"cannot read {shown(path)}: it is not a PNG file")
    text: dict[str, str] = {}
    total = 0
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return text  # truncated after the last whole chunk: what was read stands
        length, kind = struct.unpack(">I4s", header)
        if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_TEXT_CHUNK:
            data = handle.read(length)
            handle.seek(4, os.SEEK_CUR)  # the CRC
            if len(data) < length:
                return text
            total += length
            if total > MAX_TEXT_MEMORY:
                raise UnreadableFileError(f"{shown(path)} holds more than {MAX_TEXT_MEMORY >> 20} MiB of text")
            entry = _decode_text_chunk(kind, data)
            if entry is not None:
                text.setdefault(*entry)
        elif kind == b"IEND":
            return text
        else:
            handle.seek(length + 4, os.SEEK_CUR)  # image data (and oversized text) skipped unread


def _decode_text_chunk(kind: bytes, data: bytes) -> tuple[str, str] | None:
    keyword, separator, rest = data.partition(b"\x00")
    if not separator or not keyword:
        return None
    key = keyword.decode("latin-1")
    try:
        if kind == b"tEXt":
            return key, rest.decode("latin-1")
        if kind == b"zTXt":
            return key, _inflate(rest[1:]).decode("latin-1") if rest[:1] == b"\x00" else None
        compressed, method, rest = rest[0:1], rest[1:2], rest[2:]
        _language, _, rest = rest.partition(b"\x00")
        _translated, _, value = rest.partition(b"\x00")
        if compressed == b"\x01":
            if method != b"\x00":
                return None
            value = _inflate(value)
        return key, value.decode("utf-8")
    except (zlib.error, UnicodeDecodeError, ValueError):
        return None


def _inflate(data: bytes) -> bytes:
    """zlib data, inflated to at most one text chunk's bound (a zip bomb stops there)."""
    inflater = zlib.decompressobj()
    value = inflater.decompress(data, MAX_TEXT_CHUNK)
    if inflater.unconsumed_tail:
        raise ValueError("text chunk inflates past the bound")
    return value


def open_picture(path: str | os.PathLike, background: str | None = None):
    """A PIL image of a regular file, refused above MAX_PICTURE_PIXELS before any pixel is decoded.

    Returns the image in RGB (an RGBA one laid on `background` first, where given, as A1111's
    images.flatten does); UnreadableFileError names the problem.
    """
    from PIL import Image, UnidentifiedImageError

    fd = open_regular(path, "picture")
    name = shown(Path(path).name)
    with os.fdopen(fd, "rb", closefd=True) as handle:
        head = handle.read(24)
        handle.seek(0)
        if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
            _refuse_large(*struct.unpack(">II", head[16:24]), name)  # before Pillow warns or allocates
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(handle) as image:
                    _refuse_large(*image.size, name)
                    if background is not None and image.mode == "RGBA":
                        laid = Image.new("RGBA", image.size, background)
                        laid.paste(image, mask=image)
                        return laid.convert("RGB")
                    return image.convert("RGB")
        except Image.DecompressionBombError:
            raise UnreadableFileError(f"{name} is too large to show (a decompression bomb, as Pillow says)") \
                from None
        except (OSError, UnidentifiedImageError, ValueError) as error:
            raise UnreadableFileError(f"cannot show {name}: {shown(error)}") from None


def _refuse_large(width: int, height: int, name: str) -> None:
    if width * height > MAX_PICTURE_PIXELS:
        raise UnreadableFileError(f"{name} is {width}x{height}: too large to show "
                                  f"(at most {MAX_PICTURE_PIXELS >> 20} M pixels)")

"""Checking and parsing the numbers a request takes: ranges, whole numbers, sizes, seeds (no torch)."""

from __future__ import annotations

import math
import os

from diffusers_tui.engine.errors import RequestError

MAX_SEED = 2**64 - 1
MAX_STEPS = 1000
MAX_GUIDANCE = 50.0
MAX_SIDE = 4096
MAX_PROMPT_CHARS = 10_000
#: The highest eta and s_noise a request takes (A1111's sliders stop at 1; its X/Y/Z plot takes any value).
MAX_NOISE_SCALE = 10.0
#: The highest S_churn (A1111's setting stops at 100) and the highest σ bound for churn (SD's σ stay under 15).
MAX_CHURN = 100.0
MAX_CHURN_SIGMA = 1000.0
#: The highest flow shift (SD3 uses 3, Flux's size-dependent shift stays under 4; ComfyUI allows 100).
MAX_SHIFT = 100.0
#: The valid range of every numeric request field: messages and tooltips quote these.
LIMITS: dict[str, tuple[float, float]] = {
    "steps": (1, MAX_STEPS),
    "guidance": (0, MAX_GUIDANCE),
    "seed": (0, MAX_SEED),
    "width": (8, MAX_SIDE),
    "height": (8, MAX_SIDE),
    "preview_every": (1, MAX_STEPS),
    "strength": (0, 1),
    # A1111's batch size slider stops at 8, its batch count at 100.
    "batch_size": (1, 16),
    "batch_count": (1, 100),
    # A1111's hires fix: its upscale slider (1 to 4) and second-pass steps (0: the first pass's).
    "hires_scale": (1, 4),
    "hires_steps": (0, MAX_STEPS),
    "pag_scale": (0, MAX_GUIDANCE),
}


def describe_range(name: str) -> str:
    """ "1 to 1000": a field's range as messages say it (the seed's top as 2^64-1)."""
    low, high = LIMITS[name]
    shown = "2^64-1" if high == MAX_SEED else f"{high:g}"
    return f"{low:g} to {shown}"


def check_whole(name: str, value: object, low: int, high: int | None = None) -> int:
    """`value` as a whole number in low..high (no top when None), or RequestError naming `name`."""
    valid = f"{low} to {high}" if high is not None else f"{low} or more"
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(name, f"{value!r} is not a whole number ({valid})")
    if value < low or (high is not None and value > high):
        raise RequestError(name, f"{value} is outside {valid}")
    return value


def check_real(name: str, value: object, low: float, high: float, low_included: bool = True) -> float:
    """`value` as a finite number in low..high (above low where `low_included` is False), or RequestError."""
    valid = f"{low:g} to {high:g}" if low_included else f"above {low:g}, up to {high:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(name, f"{value!r} is not a number ({valid})")
    if value > high or value < low or (value == low and not low_included):
        raise RequestError(name, f"{value:g} is outside {valid}")
    return float(value)


def parse_whole(name: str, text: str, low: int, high: int | None = None) -> int:
    """Text typed or passed on a command line, as a whole number in low..high."""
    try:
        value = int(str(text).strip())
    except ValueError:
        valid = f"{low} to {high}" if high is not None else f"{low} or more"
        raise RequestError(name, f"{text!r} is not a whole number ({valid})") from None
    return check_whole(name, value, low, high)


def parse_number(name: str, text: str) -> float:
    """Text as a number, for a float field such as guidance (its range is checked by the request)."""
    try:
        return float(str(text).strip())
    except ValueError:
        raise RequestError(name, f"{text!r} is not a number ({describe_range(name)})") from None


def parse_size(text: str) -> tuple[int | None, int | None]:
    """"512x768" or "512" to (width, height); "" to (None, None), the model's own size."""
    text = text.strip().lower()
    if not text:
        return None, None
    parts = text.split("x")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise RequestError("size", f"{text!r} is not a size like 512x512 or 512 (multiples of 8, up to {MAX_SIDE})")


def random_seed() -> int:
    """A fresh seed in the range every request accepts: 4 bytes from the OS's CSPRNG, uniform over 0..2**32-1
    (what secrets.randbelow(2**32) gives, without the 4 ms of importing hashlib on the start path)."""
    return int.from_bytes(os.urandom(4), "little")

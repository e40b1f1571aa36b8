"""Reading the settings fields: text to request values, and engine errors back to fields."""

from __future__ import annotations

from diffusers_tui.engine.errors import RequestError, UserFacingError

#: Which widget shows a request field, so a bad value marks the right input.
FIELD_WIDGETS = {"prompt": "#prompt", "negative_prompt": "#negative", "steps": "#steps", "guidance": "#guidance",
                 "seed": "#seed", "width": "#size", "height": "#size", "size": "#size",
                 "preview_every": "#preview-every", "scheduler": "#scheduler", "model": "#model",
                 "compare": "#scheduler", "compare_steps": "#compare-steps", "reference": "#reference", "fps": "#fps"}


def describe_failure(error: BaseException) -> tuple[str, str | None]:
    """(message for the user, request field to mark or None) for anything a run raised."""
    if isinstance(error, RequestError):
        return str(error), error.field
    if isinstance(error, UserFacingError):
        return str(error), None
    # The engine turns run failures into UserFacingErrors; anything else is a bug of ours.
    return f"unexpected error: {type(error).__name__}: {error}", None


def parse_int(field: str, text: str, valid: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise RequestError(field, f"{text!r} is not a whole number ({valid})") from None


def parse_float(field: str, text: str, valid: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise RequestError(field, f"{text!r} is not a number ({valid})") from None

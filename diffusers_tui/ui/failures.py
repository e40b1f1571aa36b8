"""Anything a worker caught, as the one line the user is told and the request field to mark."""

from __future__ import annotations

from diffusers_tui.engine import RequestError, UserFacingError


def describe_failure(error: BaseException) -> tuple[str, str | None]:
    """(message for the user, request field to mark or None) for anything a run raised."""
    if isinstance(error, RequestError):
        return str(error), error.field
    if isinstance(error, UserFacingError):
        return str(error), None
    # The engine turns run failures into UserFacingErrors; anything else is a bug of ours.
    return f"unexpected error: {type(error).__name__}: {error}", None

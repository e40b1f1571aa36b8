"""Untrusted text made safe to show: control characters escaped, length bounded.

Anything read from a file or another process (PNG metadata, the index, the config,
model and folder names, exception messages) may carry terminal escape sequences. One
function, `shown`, is the sanitiser the commands and the app both use before such text
reaches a terminal.
"""

from __future__ import annotations

import re

#: C0 controls (tab and newline kept where allowed), DEL, C1 controls (0x9b is a one-byte CSI),
#: and the Unicode line breaks and bidirectional overrides that reorder what a terminal shows.
_UNSAFE_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
DEFAULT_LIMIT = 4000


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object, limit: int | None = DEFAULT_LIMIT, multiline: bool = False) -> str:
    """`value` as text that cannot drive a terminal: every control character written as `\\xNN`.

    Newlines are kept only when `multiline`; tabs always are. Longer than `limit`
    characters, the text is cut and marked with an ellipsis.
    """
    text = value if isinstance(value, str) else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE_ONE_LINE
    return pattern.sub(_escape, text)


def is_clean(text: str) -> bool:
    """True when `text` has no character `shown` would escape (newlines allowed)."""
    return _UNSAFE_MULTILINE.search(text) is None

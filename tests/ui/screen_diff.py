"""A snapshot that does not match, told as rows: which screen lines differ in text or in colour.

pytest-textual-snapshot says only that an SVG differs and writes an HTML report that a CI log
does not carry; this reads both SVGs back into rows so that the failure says what changed.
"""

from __future__ import annotations

import difflib
import html
import re
from collections import defaultdict

CELL_HEIGHT, CELL_WIDTH = 24.4, 12.2  # Rich's SVG export: 20 px font, line height 1.22, char width 0.61
MOST_COLOUR_ROWS = 8
TEXT = re.compile(r'<text class="([^"]+)" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')
BACKGROUND = re.compile(r'<rect fill="(#[0-9a-fA-F]{6})" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"')
# Rich names classes terminal-<id>-rN; pytest-textual-snapshot stores them as terminal-rN.
CLASS_COLOUR = re.compile(r"\.(terminal-(?:\w+-)?r\d+) \{ fill: (#[0-9a-fA-F]{6})")
FOREGROUND_CLASS = re.compile(r"terminal-(?:\w+-)?r\d+")


def screen_rows(svg: str) -> tuple[list[str], list[str]]:
    """(text, colours) per screen line of a Rich SVG export; colours as 'x:background/foreground' runs."""
    colours = dict(CLASS_COLOUR.findall(svg))
    texts: dict[int, dict[int, str]] = defaultdict(dict)
    paint: dict[int, list[str]] = defaultdict(list)
    for css_class, x, y, content in TEXT.findall(svg):
        if FOREGROUND_CLASS.fullmatch(css_class):
            row = int(float(y) // CELL_HEIGHT)
            # Placed by column: Rich splits a row into runs differently as styles change.
            column = round(float(x) / CELL_WIDTH)
            for offset, character in enumerate(html.unescape(content).replace("\xa0", " ")):
                texts[row][column + offset] = character
            paint[row].append(f"{float(x):.0f}:fg{colours.get(css_class, css_class)}")
    for fill, x, y, _width in BACKGROUND.findall(svg):
        paint[int(float(y) // CELL_HEIGHT)].append(f"{float(x):.0f}:bg{fill}")
    rows = range(max([*texts, *paint], default=-1) + 1)
    return (["".join(texts[row].get(column, " ") for column in range(max(texts[row], default=-1) + 1)).rstrip()
             for row in rows],
            [" ".join(sorted(paint[row])) for row in rows])


def describe_difference(expected_svg: str, actual_svg: str) -> str:
    """The rows whose text differs (a unified diff), then those whose text agrees but colours do not."""
    expected_text, expected_paint = screen_rows(expected_svg)
    actual_text, actual_paint = screen_rows(actual_svg)
    lines = list(difflib.unified_diff(expected_text, actual_text, "stored snapshot", "this run", n=1, lineterm=""))
    recoloured = [row for row, (before, after) in enumerate(zip(expected_paint, actual_paint))
                  if before != after and row < len(actual_text) and expected_text[row] == actual_text[row]]
    if len(recoloured) > MOST_COLOUR_ROWS:
        lines.append(f"{len(recoloured)} rows differ only in colour: rows {recoloured}; the first {MOST_COLOUR_ROWS}:")
    for row in recoloured[:MOST_COLOUR_ROWS]:
        before, after = set(expected_paint[row].split()), set(actual_paint[row].split())
        gone, new = before - after, after - before
        lines.append(f"row {row} {actual_text[row].strip()[:60]!r}: colours differ: "
                     f"only stored {sorted(gone)[:6]}, only now {sorted(new)[:6]}")
    return "\n".join(lines) or "the rows' text and colours agree (the SVGs differ elsewhere)"

"""The app's output filter (ui.terminal_output): the screen it leaves is the unfiltered output's, in fewer bytes.

Every check feeds the same writes, filtered and not, to pyte (a VT terminal emulator) and compares each
cell's character, colours and attributes, and the cursor, after every write."""

from __future__ import annotations

import random

import pytest

pyte = pytest.importorskip("pyte")

from diffusers_tui.ui.terminal_output import DEFAULT, Rendition, TerminalOutput, parse_sgr, transition  # noqa: E402

WIDTH, HEIGHT = 40, 8


def _screens(writes: list[str], size=(WIDTH, HEIGHT)):
    """(unfiltered, filtered) screens after each write, and the filtered bytes."""
    plain, filtered = pyte.Screen(*size), pyte.Screen(*size)
    plain_stream, filtered_stream = pyte.Stream(plain), pyte.Stream(filtered)
    output = TerminalOutput(size)
    sent = 0
    for write in writes:
        plain_stream.feed(write)
        reduced = output(write)
        sent += len(reduced.encode())
        filtered_stream.feed(reduced)
        yield _state(plain), _state(filtered), sent


def _state(screen):
    cells = [[(c.data, c.fg, c.bg, c.bold, c.italics, c.underscore, c.reverse, c.strikethrough)
              for c in (screen.buffer[y][x] for x in range(screen.columns))] for y in range(screen.lines)]
    return cells, (screen.cursor.x, screen.cursor.y)


def _style(rng: random.Random) -> str:
    codes = [code for code in ("1", "3", "4", "7", "9") if rng.random() < 0.15]
    fg, bg = rng.random(), rng.random()
    if fg < 0.5:
        codes.append(f"38;2;{rng.randrange(3)};{rng.randrange(4)};9")
    elif fg < 0.6:
        codes.append(f"38;5;{rng.randrange(4)}")
    elif fg < 0.7:
        codes.append(rng.choice(["31", "32", "97"]))
    if bg < 0.5:
        codes.append(f"48;2;{rng.randrange(3)};1;{rng.randrange(4)}")
    elif bg < 0.6:
        codes.append(f"48;5;{rng.randrange(4)}")
    return ";".join(codes)


def _random_write(rng: random.Random) -> str:
    """Output shaped like Textual's (moves, styled runs, line feeds) with what Textual never writes mixed in."""
    parts = []
    for _ in range(rng.randrange(1, 30)):
        roll = rng.random()
        if roll < 0.45:
            style, text = _style(rng), rng.choice("▄▀ab ") * rng.randrange(1, 5)
            parts.append(f"\x1b[{style}m{text}\x1b[0m" if style else text)
        elif roll < 0.65:
            # Anywhere, the last row and column included: text there wraps, and on the last row scrolls.
            parts.append(f"\x1b[{rng.randrange(1, HEIGHT + 1)};{rng.randrange(1, WIDTH + 1)}H")
        elif roll < 0.7:
            parts.append("\n")
        elif roll < 0.74:
            parts.append(f"\x1b[{_style(rng) or '1'}m")  # a style left open
        elif roll < 0.77:
            parts.append("\x1b[22m")  # a code the filter does not follow
        elif roll < 0.8:
            parts.append(rng.choice(["\x1b[K", "\x1b[2J", "\x1b[?25l", "\x1b[?2026h", "\x1b[3C", "\x1b]0;t\x07"]))
        elif roll < 0.83:
            parts.append(rng.choice(["全", "e\u0301", "\r"]))  # wide, combining, control: passed through
        else:
            parts.append("xy")
    # Textual ends every write with the cursor moved where it wants it.
    return "".join(parts) + f"\x1b[{rng.randrange(1, HEIGHT + 1)};{rng.randrange(1, WIDTH + 1)}H"


@pytest.mark.parametrize("seed", range(20))
def test_the_filtered_screen_is_the_unfiltered_one_after_every_write(seed):
    rng = random.Random(seed)
    # Few colours and glyphs: later writes often repeat what is already on screen, as frames do.
    writes = [_random_write(rng) for _ in range(60)]
    for step, (plain, filtered, _) in enumerate(_screens(writes)):
        assert filtered == plain, f"seed {seed}: the screens differ after write {step}: {writes[step]!r}"


def _frame(colours: list[list[tuple[int, int]]], top: int = 1) -> str:
    """A picture as Textual writes it: each row a move, then each cell's full style, glyph and reset."""
    rows = []
    for y, row in enumerate(colours):
        cells = "".join(f"\x1b[38;2;{lo};0;0;48;2;0;{up};0m▄\x1b[0m" for up, lo in row)
        rows.append(f"\x1b[{top + y};3H{cells}")
    return "\n".join(rows) + "\x1b[1;1H"


def test_a_repainted_frame_sends_only_the_cells_that_changed_and_only_the_colour_that_changed():
    rng = random.Random(3)
    first = [[(rng.randrange(256), rng.randrange(256)) for _ in range(30)] for _ in range(6)]
    second = [row[:] for row in first]
    second[2][7] = (second[2][7][0], (second[2][7][1] + 1) % 256)  # one cell's lower pixel
    results = list(_screens([_frame(first), _frame(first), _frame(second)]))
    for plain, filtered, _ in results:
        assert filtered == plain
    sizes = [results[0][2], results[1][2] - results[0][2], results[2][2] - results[1][2]]
    naive = len(_frame(first).encode())
    assert sizes[0] < naive  # no reset after every cell
    assert sizes[1] == 0  # the same frame again: nothing (the cursor is already where it ends)
    # The changed cell: a move to it, its lower pixel's colour (its upper one is the terminal's already
    # when the cell before has it; else both) and the glyph, then the cursor back.
    assert sizes[2] <= len("\x1b[3;10H\x1b[38;2;255;0;0;48;2;0;255;0m▄\x1b[0m\x1b[1;1H".encode())


def test_renditions_are_followed_or_given_up_on():
    red = parse_sgr("38;2;255;0;0", DEFAULT)
    assert red == Rendition(frozenset(), "38;2;255;0;0", None)
    assert parse_sgr("1;48;5;17", red) == Rendition(frozenset({"1"}), "38;2;255;0;0", "48;5;17")
    assert parse_sgr("22", red) is None  # bold off: not followed
    assert parse_sgr("31", None) is None and parse_sgr("0;31", None) == Rendition(frozenset(), "31", None)
    bold_red = Rendition(frozenset({"1"}), "31", None)
    assert transition(bold_red, Rendition(frozenset({"1"}), "32", None)) == "\x1b[32m"
    assert transition(bold_red, Rendition(frozenset(), "31", None)) == "\x1b[0;31m"  # bold off: from a reset
    assert transition(None, DEFAULT) == "\x1b[0m" and transition(DEFAULT, DEFAULT) == ""

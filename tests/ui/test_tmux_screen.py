"""The app in tmux, a real terminal emulator: the finished half-block picture on its screen is the app's own
cells for the saved PNG, exactly, before and after the window is resized.

The app's output goes through its screen-diff filter (ui.terminal_output), which skips cells it believes
the terminal already shows; a wrong belief would leave stale cells on tmux's screen. tmux's own copy of
the screen (`capture-pane -e`) is read back through pyte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]
pyte = pytest.importorskip("pyte")

COLUMNS, ROWS = 160, 48


def _tmux(*arguments: str) -> str:
    return subprocess.run(["tmux", "-L", "diffusers-tui-test", *arguments], capture_output=True, text=True,
                          check=True, timeout=30).stdout


def _screen(size: tuple[int, int]):
    """tmux's screen, colours included, as a pyte screen."""
    lines = _tmux("capture-pane", "-e", "-p", "-t", "app").split("\n")[:size[1]]
    screen = pyte.Screen(*size)
    pyte.Stream(screen).feed("\r\n".join(lines))
    return screen


def _wait_for(text: str, size: tuple[int, int], timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _screen(size)
        if any(text in line for line in screen.display):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared:\n" + "\n".join(_screen(size).display))


#: The settings panel's width (its CSS): the live pane starts right of it.
PANEL_COLUMNS = 46


def _picture(screen) -> np.ndarray:
    """The half-block cells' colours as pixels (upper pixel: background, lower: foreground), right of the
    settings panel (its scrollbar's thumb can end in a half-block too)."""
    cells = [(y, x) for y in range(screen.lines) for x in range(PANEL_COLUMNS, screen.columns)
             if screen.buffer[y][x].data == "▄"]
    assert cells, "no half-block picture on screen"
    top, left = min(y for y, _ in cells), min(x for _, x in cells)
    bottom, right = max(y for y, _ in cells), max(x for _, x in cells)
    pixels = np.zeros(((bottom - top + 1) * 2, right - left + 1, 3), dtype=np.int16)
    for y in range(top, bottom + 1):
        for x in range(left, right + 1):
            cell = screen.buffer[y][x]
            for offset, colour in ((0, cell.bg), (1, cell.fg)):
                assert len(colour) == 6, f"cell ({x}, {y}) has no truecolor colour: {colour}"
                pixels[(y - top) * 2 + offset, x - left] = [int(colour[i:i + 2], 16) for i in (0, 2, 4)]
    return pixels


def _the_apps_cells(png: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    from diffusers_tui.ui.cells import strips_for

    with Image.open(png) as image:
        rows = strips_for(image.convert("RGB"), size)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.int16)
    for colours, offset in ((rows.upper, 0), (rows.lower, 1)):
        for channel, shift in enumerate((16, 8, 0)):
            pixels[offset::2, :, channel] = (colours >> shift) & 255
    return pixels


def test_the_finished_picture_in_tmux_is_the_apps_cells_exactly_also_after_a_resize(tmp_path):
    command = f"cd {tmp_path} && COLORTERM=truecolor {Path(sys.executable).parent / 'diffusers-tui'}"
    env = {key: value for key, value in os.environ.items() if key != "TMUX"}
    subprocess.run(["tmux", "-L", "diffusers-tui-test", "new-session", "-d", "-s", "app", "-x", str(COLUMNS),
                    "-y", str(ROWS), command], check=True, env=env, timeout=30)
    try:
        _wait_for("ctrl+g", (COLUMNS, ROWS))
        _tmux("send-keys", "-t", "app", "C-g")
        _wait_for("done:", (COLUMNS, ROWS))
        _tmux("send-keys", "-t", "app", "C-s")
        deadline = time.monotonic() + 30
        # Numbered: the finished save, not its .saving-* temporary file (written, then renamed into place).
        while not list(tmp_path.glob("outputs/*/[0-9]*.png")) and time.monotonic() < deadline:
            time.sleep(0.3)
        png, = tmp_path.glob("outputs/*/[0-9]*.png")
        for size in ((COLUMNS, ROWS), (COLUMNS - 24, ROWS - 6)):
            if size != (COLUMNS, ROWS):
                _tmux("resize-window", "-t", "app", "-x", str(size[0]), "-y", str(size[1]))
                time.sleep(2)
            # Over a link that looks slow (tmux reading behind a loaded machine) the pane draws the finished
            # picture in bands after the caption says done: the picture is read until it settles.
            deadline = time.monotonic() + 30
            while True:
                shown = _picture(_wait_for("done:", size))
                expected = _the_apps_cells(png, (shown.shape[1], shown.shape[0]))
                worst = int(np.abs(shown - expected).max())
                if worst == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert worst == 0, f"at {size}: a cell on tmux's screen is {worst} levels off the app's own cells"
    finally:
        subprocess.run(["tmux", "-L", "diffusers-tui-test", "kill-server"], capture_output=True, timeout=30)

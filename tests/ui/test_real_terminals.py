"""The app in real terminals under Xvfb, as users run it: xterm with Sixel (-ti vt340) and Debian's kitty.

Each terminal runs the app on the demo; xdotool presses ctrl+g, then ctrl+s to save the picture; a
screenshot of the X display must show the saved PNG where the picture is drawn (with Sixel at full
resolution, or as half-blocks where the terminal cannot show it: kitty before 0.28). .ci/run installs
the packages; where they are missing the test says so and skips.
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
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs terminals under Xvfb")]

TOOLS = ("Xvfb", "xdotool", "import")
#: How many saturated pixels a picture's pixel has on each side: borders and rules are thinner than this.
SOLID = 3
#: How each terminal starts a command, and how close the screen's picture must be to the saved PNG (RMSE,
#: 0-255, after both are shrunk to 16x16): Sixel shows the picture itself, half-blocks two pixels a cell.
TERMINALS = {
    "xterm": (["xterm", "-ti", "vt340", "-fa", "Monospace", "-fs", "10", "-geometry", "160x48+0+0", "-e"], 8.0),
    "kitty": (["kitty", "--config", "NONE", "-o", "font_size=11", "-o", "initial_window_width=1200",
               "-o", "initial_window_height=760", "-e"], 8.0),
}


@pytest.fixture(scope="module")
def display():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs xvfb, xdotool and imagemagick)")
    number = next(n for n in range(90, 190) if not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1)
    yield f":{number}"
    server.terminate()
    server.wait(10)


def _x(display: str, *command: str, check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "DISPLAY": display},
                          timeout=60)
    if check and done.returncode:
        raise AssertionError(f"{command[0]} failed: {done.stderr}")
    return done.stdout


def _screenshot(display: str, path: Path) -> np.ndarray:
    from PIL import Image

    _x(display, "import", "-window", "root", str(path))
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=float)


def _picture_box(screen: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where the picture is on the screen, (top, bottom, left, right): the longest runs of rows, then columns, of
    saturated colour (the demo's red and blue; the app's own screen is greys, and its coloured borders are
    lines a pixel or two wide, apart from the picture)."""
    mask = (screen.max(axis=2) - screen.min(axis=2)) > 100
    # Borders and rules are lines a few pixels thick (the log's top rule runs the column's whole width):
    # a pixel counts only with saturated pixels 3 above, below, left and right of it, as the picture's have.
    solid = mask.copy()
    for shift in (SOLID, -SOLID):
        solid &= np.roll(mask, shift, axis=0) & np.roll(mask, shift, axis=1)
    mask = solid
    rows = _longest_run(mask.sum(axis=1) >= 0.5 * mask.sum(axis=1).max())
    if rows is None:
        return None
    band = mask[rows[0]:rows[1]]
    columns = _longest_run(band.sum(axis=0) >= 0.3 * (rows[1] - rows[0]))
    if columns is None or min(rows[1] - rows[0], columns[1] - columns[0]) < 20:
        return None
    # The test for solid pixels took SOLID pixels off each edge: the picture's own edge rows belong to it (xterm
    # draws a Sixel image's first band with a few wrong colours for some images, which is not a border cell).
    return rows[0] - SOLID, rows[1] + SOLID, columns[0] - SOLID, columns[1] + SOLID


def _longest_run(flags: np.ndarray) -> tuple[int, int] | None:
    best, start = None, None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if best is None or index - start > best[1] - best[0]:
                best = (start, index)
            start = None
    return best


def _warm_border_pixels(screen: np.ndarray, box, margin: int = 14) -> int:
    """Red or orange pixels (a focused border) in the ring just outside the picture."""
    top, bottom, left, right = box
    ring = np.zeros(screen.shape[:2], dtype=bool)
    ring[max(top - margin, 0):bottom + margin, max(left - margin, 0):right + margin] = True
    ring[top:bottom, left:right] = False
    warm = (screen[..., 0] > 150) & (screen[..., 2] < 100)
    return int((warm & ring).sum())


def _shrunk(picture: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(picture.astype(np.uint8)).resize((16, 16), Image.BOX), dtype=float)


@pytest.mark.parametrize("terminal", sorted(TERMINALS))
def test_the_finished_image_on_screen_is_the_saved_png(display, terminal, tmp_path):
    from PIL import Image

    start, tolerance = TERMINALS[terminal]
    if shutil.which(start[0]) is None:
        pytest.skip(f"{start[0]} is not installed (.ci/run installs it)")
    app = (f"cd {tmp_path} && DIFFUSERS_TUI_THREADS=1 {sys.executable} -m diffusers_tui --outputs {tmp_path}/out; "
           "sleep 60")
    window = subprocess.Popen([*start, "bash", "-c", app], env={**os.environ, "DISPLAY": display},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(15)  # the terminal opens, the app starts and loads the demo
        ids = _x(display, "xdotool", "search", "--onlyvisible", "--pid", str(window.pid), check=False).split()
        ids = ids or _x(display, "xdotool", "search", "--onlyvisible", "--class", start[0]).split()
        assert ids, f"no {terminal} window"
        # Keys go to the focused window through XTEST: xterm ignores events sent to a window (allowSendEvents).
        _x(display, "xdotool", "windowfocus", "--sync", ids[-1], check=False)
        _x(display, "xdotool", "key", "ctrl+g")
        time.sleep(10)  # 20 steps on the demo, and the finished image drawn
        screen = _screenshot(display, tmp_path / "screen.png")
        _x(display, "xdotool", "key", "Tab")  # focus moves on: the pane's border changes colour
        time.sleep(2)
        unfocused = _screenshot(display, tmp_path / "unfocused.png")
        _x(display, "xdotool", "key", "shift+Tab")
        time.sleep(1)
        _x(display, "xdotool", "key", "ctrl+s")
        deadline = time.monotonic() + 20

        def saved_pngs() -> list:  # the finished files: a save writes a hidden .saving-* file, then renames it
            return [path for path in (tmp_path / "out").rglob("*.png") if not path.name.startswith(".")]

        while time.monotonic() < deadline and not saved_pngs():
            time.sleep(0.5)
        saved = saved_pngs()
        assert saved, "ctrl+s saved nothing"
    finally:
        os.killpg(window.pid, 9)
        window.wait(10)
    box = _picture_box(screen)
    assert box is not None, "no picture on the screen"
    top, bottom, left, right = box
    with Image.open(saved[0]) as image:
        png = np.asarray(image.convert("RGB"), dtype=float)
    distance = float(np.sqrt(np.mean((_shrunk(screen[top:bottom, left:right]) - _shrunk(png)) ** 2)))
    assert distance < tolerance, f"{terminal}: the picture on screen is {distance:.1f} from the saved PNG"
    # Around the picture, the focused border's warm colour is there while focused and gone once focus moves:
    # no cell of it is left over beside the image (textual-image's Sixel cursor put one on the wrong row).
    focused, left_over = _warm_border_pixels(screen, box), _warm_border_pixels(unfocused, box)
    assert focused > 100 and left_over < 5, (focused, left_over)

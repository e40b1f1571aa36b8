"""The app in a real pseudo-terminal: forced kitty or sixel graphics reach the terminal as their escape codes."""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import time

import pytest

pyte = pytest.importorskip("pyte")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="drives the app through a Linux pty")

#: What each kind writes for a picture: Kitty's APC graphics command, a Sixel DCS string.
SEQUENCES = {"kitty": re.compile(rb"\x1b_G[^\x1b]*;"), "sixel": re.compile(rb"\x1bP[0-9;]*q"),
             "halfblock": None}


def _run_in_pty(graphics: str, outputs: str, timeout: float = 90) -> tuple[bytes, bytes]:
    """Start the app with --graphics, press ctrl+g once the model is loaded; (output before, output after the run)."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: a 120x40 terminal of 10x20-pixel cells, as a real one reports
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 1200, 800))
        # Textual takes COLUMNS and LINES over the terminal's own size when they are set (pytest sets them).
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40", DIFFUSERS_TUI_THREADS="1")
        os.environ.pop("TMUX", None)
        os.execv(sys.executable, [sys.executable, "-m", "diffusers_tui", "--graphics", graphics, "--outputs", outputs])
    # The app sends only the cells that change (ui.terminal_output): its words are read off an emulated
    # screen, not searched for in the bytes.
    screen = pyte.Screen(120, 40)
    stream = pyte.ByteStream(screen)
    shows = lambda text: any(text in line for line in screen.display)  # noqa: E731
    seen, mark, started = b"", None, time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    data = os.read(fd, 1 << 20)
                except OSError:
                    break
                seen += data
                stream.feed(data)
            if mark is None and shows("schedulers available"):
                mark = len(seen)
                os.write(fd, b"\x07")  # ctrl+g
            if mark is not None and shows("done:"):
                deadline = time.monotonic() + 2  # the final image is drawn after the caption
                while time.monotonic() < deadline:
                    if select.select([fd], [], [], 0.1)[0]:
                        seen += os.read(fd, 1 << 20)
                break
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    assert mark is not None and shows("done:"), "\n".join(screen.display)
    return seen[:mark], seen[mark:]


@pytest.mark.slow
@pytest.mark.parametrize("graphics", ["kitty", "sixel", "halfblock"])
def test_the_finished_image_goes_out_in_the_chosen_graphics(graphics, tmp_path):
    before, after = _run_in_pty(graphics, str(tmp_path))
    for kind, sequence in SEQUENCES.items():
        if sequence is not None:
            # Only the chosen kind's pictures appear, and only once there is a finished image.
            assert bool(sequence.search(after)) == (kind == graphics), kind
            assert not sequence.search(before.split(b"\x1b[?1049h", 1)[-1]), kind  # after start-up probes

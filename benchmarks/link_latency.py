"""Keys and frames over a slow link: the app in a real pty whose output is read at a capped rate.

    python benchmarks/link_latency.py [--rate 200] [--steps 200]

The app runs on the demo in a pseudo-terminal (120x40, truecolor). A reader takes its output at
--rate KB/s at most, as a slow SSH link would, into a terminal emulator (pyte). A long run starts
(ctrl+g), the prompt takes focus (ctrl+e), and every 150 ms a key is typed: a letter, then a
backspace, and so on. Each key's latency is the time from writing it to the pty until the
emulated screen shows its effect. Goals: p95 under 100 ms while the run goes on; and when the run
ends, its closing screen ("done: ...") is on the emulated screen within 1 s of the run's end (the
output's backlog).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

COLUMNS, ROWS = 120, 40
MARK = "Ж"  # typed into the prompt; nothing else on the screen has it


class SlowTerminal:
    """A pty master read at a capped rate into a pyte screen."""

    def __init__(self, master: int, rate_bytes: float) -> None:
        import pyte

        self.master, self.rate = master, rate_bytes
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.lock = threading.Lock()
        self.received = 0
        self.version = 0  # counts feeds: the screen is only read again after it changed
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        # A token bucket holding at most 4 KB: an idle link does not save up bandwidth for later.
        tokens, last = 0.0, time.perf_counter()
        while True:
            now = time.perf_counter()
            tokens, last = min(4096.0, tokens + self.rate * (now - last)), now
            if tokens < 1024:
                time.sleep(0.002)
                continue
            try:
                data = os.read(self.master, int(tokens))
            except OSError:
                break
            if not data:
                break
            tokens -= len(data)
            with self.lock:
                self.stream.feed(data)
                self.received += len(data)
                self.version += 1
        self.closed = True

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.screen.display)

    def wait_for(self, condition, timeout: float) -> float | None:
        """Seconds until `condition(screen text)` holds, or None."""
        started, seen = time.perf_counter(), -1
        while time.perf_counter() - started < timeout:
            if self.version != seen:
                seen = self.version
                if condition(self.text()):
                    return time.perf_counter() - started
            time.sleep(0.001)
        return None


def run(rate_kb: float, steps: int) -> tuple[list[float], float | None, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    folder = tempfile.mkdtemp(prefix="diffusers-tui-link-")
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "DIFFUSERS_TUI_STEPS": str(steps),
           "DIFFUSERS_TUI_CONFIG": os.path.join(folder, "none.toml")}
    env.pop("TMUX", None)
    process = subprocess.Popen([sys.executable, "-m", "diffusers_tui"], stdin=slave, stdout=slave, stderr=slave,
                               cwd=folder, env=env, start_new_session=True)
    os.close(slave)
    terminal = SlowTerminal(master, rate_kb * 1000)
    try:
        if terminal.wait_for(lambda text: "ctrl+g" in text and "loaded demo" in text, 120) is None:
            raise SystemExit("the app did not load the demo:\n" + terminal.text())
        os.write(master, b"\x07")  # ctrl+g
        started = time.perf_counter()
        # The run takes focus to the pane as it starts; then ctrl+e gives it back to the prompt.
        if terminal.wait_for(lambda text: re.search(r"step \d+/", text), 60) is None:
            raise SystemExit("the run did not start:\n" + terminal.text())
        os.write(master, b"\x05")
        time.sleep(0.3)
        samples: list[float] = []
        typed = False
        while "done:" not in terminal.text():
            typed = not typed
            want = 1 if typed else 0
            sent = time.perf_counter()
            os.write(master, MARK.encode() if typed else b"\x7f")
            took = terminal.wait_for(lambda text: text.count(MARK) == want, 10)
            if "done:" in terminal.text():
                break  # the run ended while this key waited: not a key during the run
            samples.append(took if took is not None else 10.0)
            time.sleep(max(0.0, 0.15 - (time.perf_counter() - sent)))
        seen = time.perf_counter()
        done = re.search(r"done: \d+ model calls in ([0-9.]+)s", terminal.text())
        # The run ended about its own duration after ctrl+g (a key press reaches the app within
        # milliseconds: input is not behind the output's backlog).
        backlog = seen - (started + float(done.group(1))) if done else None
        return samples, backlog, terminal.received
    finally:
        os.write(master, b"\x11")  # ctrl+q
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        os.close(master)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="KB/s the terminal reads at most")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    samples, backlog, received = run(args.rate, args.steps)
    if not samples:
        raise SystemExit("the run ended before a key could be typed: give it more --steps")
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))] if samples else float("nan")
    print(f"link {args.rate:.0f} KB/s, {len(samples)} keys during a {args.steps}-step demo run, "
          f"{received / 1000:.0f} KB read")
    print(f"key to screen: median {statistics.median(samples) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
          f"(goal < 100 ms), worst {samples[-1] * 1000:.0f} ms")
    print(f"backlog when the run ended: {backlog:.2f} s (goal < 1 s)" if backlog is not None
          else "backlog when the run ended: the closing line was not seen")


if __name__ == "__main__":
    main()

"""Start-up: launch to first painted frame of the app, against importing a diffusers pipeline.

    python benchmarks/startup.py [--repeats 5]

The app runs in a pseudo-terminal that answers device attributes (DA1) as every terminal
does; the clock stops at the first screen bytes that show its prompt panel. (The fields below
the sampler list mount right after that frame, and Textual's footer draws its keys a frame or two
later: the time until the footer's keys show is printed too, for reading.)
The package's bytecode is written first, as a user's first launch writes it. The baseline is
`python -c "from diffusers import StableDiffusionPipeline"`. Alternating runs, ratio of
medians; goal: at most 0.15. Beside it, the ratio against a minimal Textual app's first
frame (the floor any Textual app pays; goal: at most 2), and the modules the start path
imports beyond what that minimal app imports.

First, a regression check: the modules on the app's start path must import neither
torch nor diffusers (exit status 1 and the culprit's name if one does).
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import statistics
import subprocess
import sys
import time

APP = [sys.executable, "-m", "diffusers_tui", "--outputs", os.devnull]
BASELINE = [sys.executable, "-c", "from diffusers import StableDiffusionPipeline"]
#: The smallest Textual app that paints the same word: what start-up costs before any of ours.
MINIMAL_TEXTUAL = [sys.executable, "-c", "from textual.app import App\nfrom textual.widgets import Static\n"
                   "class Minimal(App):\n    def compose(self):\n        yield Static('Prompt')\nMinimal().run()"]


def time_first_paint(command: list[str] = APP, timeout: float = 60.0, marker: bytes = b"Prompt") -> float:
    pid, fd = pty.fork()
    if pid == 0:  # child: the app, in a 120x40 terminal
        os.environ.update(COLUMNS="120", LINES="40", TERM="xterm-256color")
        os.execv(command[0], command)
    started = time.perf_counter()
    seen, answered = b"", False
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
                if not answered and b"\x1b[c" in seen:
                    answered = True
                    # Answered as every terminal answers device attributes (a VT220-class one without
                    # Sixel); the other questions, as most terminals, it leaves unanswered.
                    os.write(fd, b"\x1b[?62;22c")
                if marker in seen:
                    return time.perf_counter() - started
        raise RuntimeError("the app painted nothing recognisable")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def compile_bytecode() -> None:
    """Write the package's bytecode, as its first launch does for a user: every later launch (what is
    timed) reads it. Without this, an environment that sets PYTHONDONTWRITEBYTECODE compiles every module
    of ours from source at each launch, while Textual's came compiled from pip."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/diffusers_tui"
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, env=env, capture_output=True)


def time_baseline() -> float:
    started = time.perf_counter()
    subprocess.run(BASELINE, check=True, capture_output=True)
    return time.perf_counter() - started


HEAVY = ("torch", "diffusers", "transformers", "accelerate")
START_PATH = ("diffusers_tui.commands", "diffusers_tui.commands.app", "diffusers_tui.ui.app", "diffusers_tui.engine")


def top_level_modules(imports: str) -> set[str]:
    script = f"import sys; {imports}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    return set(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split())


def start_path_beyond_textual() -> list[str]:
    """Top-level modules the app's start path imports that a minimal Textual app does not."""
    ours = top_level_modules("import " + ", ".join(START_PATH))
    minimal = top_level_modules("import textual.app, textual.widgets")
    return sorted(name for name in ours - minimal if not name.startswith("_"))


def heavy_imports_on_start_path() -> dict[str, list[str]]:
    """For each start-path module, the heavy packages importing it pulls in (fresh interpreter)."""
    found = {}
    for module in START_PATH:
        script = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
        loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True).stdout.split()
        found[module] = [name for name in HEAVY if name in loaded]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    culprits = {module: names for module, names in heavy_imports_on_start_path().items() if names}
    if culprits:
        for module, names in culprits.items():
            print(f"regression: importing {module} imports {', '.join(names)} at module level", file=sys.stderr)
        sys.exit(1)
    compile_bytecode()
    ours, whole, baseline, minimal = [], [], [], []
    time_first_paint(), time_baseline(), time_first_paint(MINIMAL_TEXTUAL)  # warm the file cache for all
    for _ in range(args.repeats):
        ours.append(time_first_paint())
        whole.append(time_first_paint(marker=b"^q"))
        baseline.append(time_baseline())
        minimal.append(time_first_paint(MINIMAL_TEXTUAL))
    a, w, b, m = (statistics.median(times) for times in (ours, whole, baseline, minimal))
    print(f"{'figure':<44}{'ours':>9}{'baseline':>10}{'ratio':>8}  goal")
    print(f"{'launch to first frame / import pipeline':<44}{a:>8.2f}s{b:>9.2f}s{a / b:>8.3f}  <= 0.15")
    print(f"{'launch to first frame / minimal Textual app':<44}{a:>8.2f}s{m:>9.2f}s{a / m:>8.3f}  <= 2")
    print(f"{'launch to footer keys / minimal Textual app':<44}{w:>8.2f}s{m:>9.2f}s{w / m:>8.3f}  (for reading)")
    print(f"start path imports beyond a minimal Textual app: {', '.join(start_path_beyond_textual())}")


if __name__ == "__main__":
    main()

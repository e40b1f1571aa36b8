"""Memory: peak RSS of the app generating with the demo model, and RSS after 100 runs against after 1.

    python benchmarks/memory.py [--runs 100] [--steps 5]

The real app (Textual's headless driver) generates again and again from the keyboard;
RSS is read from /proc after each run has finished. Goal: RSS after N runs at most 1.10
of RSS after the first.
"""

from __future__ import annotations

import argparse
import asyncio
import resource


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def measure(runs: int, steps: int) -> list[float]:
    from textual.widgets import Input

    from diffusers_tui.engine import Engine
    from app_harness import wait_until_loaded  # benchmarks/ is on the path when run as a script

    from diffusers_tui.ui.app import DiffusersTuiApp

    app = DiffusersTuiApp(Engine(), outputs_dir="/tmp/diffusers-tui-bench", model="demo")
    after_run = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until_loaded(pilot, app)
        app.query_one("#steps", Input).value = str(steps)
        for _ in range(runs):
            await pilot.press("ctrl+g")
            await asyncio.wait_for(app.idle.wait(), 120)
            await pilot.pause()
            after_run.append(rss_mib())
    return after_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    after_run = asyncio.run(measure(args.runs, args.steps))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    first, last = after_run[0], after_run[-1]
    print(f"{'figure':<52}{'ours':>10}{'baseline':>10}{'ratio':>8}  goal")
    print(f"{f'RSS after {args.runs} runs / after 1 run (demo)':<52}{last:>7.0f}MiB{first:>7.0f}MiB"
          f"{last / first:>8.3f}  <= 1.10")
    print(f"{'peak RSS of the app generating (demo)':<52}{peak:>7.0f}MiB{'':>10}{'':>8}  -")


if __name__ == "__main__":
    main()

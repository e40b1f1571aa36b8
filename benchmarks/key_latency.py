"""Key-press-to-screen latency while a generation runs, through Textual's headless driver.

    python benchmarks/key_latency.py [--keys 60]

A long demo run goes on in the worker thread while keys are typed into the prompt;
each sample is the time from posting the key event (as the terminal driver does) until
the first screen update after the prompt's text changed has been composed. (Pilot.press would wait for
the app to go idle, which it never does while frames stream in.) Goal: p95 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time


async def measure(keys: int, during_run: bool = True) -> list[float]:
    from textual import events
    from textual.widgets import Input, TextArea

    from diffusers_tui.engine import Engine
    from app_harness import wait_until_loaded  # benchmarks/ is on the path when run as a script

    from diffusers_tui.ui.app import DiffusersTuiApp

    app = DiffusersTuiApp(Engine(), outputs_dir="/tmp/diffusers-tui-bench", model="demo")
    samples = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until_loaded(pilot, app)
        if during_run:
            app.query_one("#steps", Input).value = "900"  # long; at 1000 the demo's default is refused (NaN)
            await pilot.press("ctrl+g")
            await pilot.pause(0.5)
        await pilot.press("ctrl+e")
        prompt = app.query_one("#prompt", TextArea)
        painted = asyncio.Event()
        post_from_prompt = prompt.post_message

        def watch_edits(message):
            # The edit has just happened: the next completed screen update shows it.
            if isinstance(message, TextArea.Changed):
                app.call_after_refresh(painted.set)
            return post_from_prompt(message)

        prompt.post_message = watch_edits
        for i in range(keys):
            assert app.running or not during_run, f"the run ended too soon: {app.log_lines[-3:]}"
            painted.clear()
            started = time.perf_counter()
            app.post_message(events.Key("x", "x"))  # as the terminal driver does
            await painted.wait()
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        if during_run:
            app.post_message(events.Key("escape", None))
            await asyncio.wait_for(app.idle.wait(), 60)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=60)
    args = parser.parse_args()
    print(f"{'figure':<44}{'p50':>9}{'p95':>9}  goal")
    for label, during_run, goal in (("key to screen, idle app (for reference)", False, "-"),
                                    ("key to screen during a run", True, "p95 < 50 ms")):
        samples = asyncio.run(measure(args.keys, during_run))
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{label:<44}{statistics.median(samples) * 1000:>7.1f}ms{p95 * 1000:>7.1f}ms  {goal}")


if __name__ == "__main__":
    main()

"""Key-press-to-screen latency while a generation runs, through Textual's headless driver.

    python benchmarks/key_latency.py [--keys 60] [--study]

A long demo run goes on in the worker thread while keys are typed into the prompt;
each sample is the time from posting the key event (as the terminal driver does) until
the first screen update after the prompt's text changed has been composed. (Pilot.press would wait for
the app to go idle, which it never does while frames stream in.) Goal: p95 under 50 ms.
With --study, the same while a study races on the comparison screen and while its plots
redraw (see measure_study).
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


async def _painted_after(app, key: str, changed) -> float:
    """Seconds from posting `key` (as the terminal driver does) until the first screen update composed after
    `changed()` became true."""
    from textual import events

    painted = asyncio.Event()
    started = time.perf_counter()
    app.post_message(events.Key(key, key if len(key) == 1 else None))
    while not changed():
        await asyncio.sleep(0.001)
    app.call_after_refresh(painted.set)
    await painted.wait()
    return time.perf_counter() - started


async def measure_study(keys: int) -> dict[str, list[float]]:
    """A study racing on the comparison screen (4 samplers x 3 step counts x 4 seeds, a reference per seed):
    tab moves the focus between its panes while they draw; then, with its plot, m redraws the convergence
    plot. And on the main screen during a run, f3 moves the sampler highlight, which redraws the σ plot."""
    from textual.widgets import Input

    from app_harness import wait_until_loaded
    from diffusers_tui.engine import Engine
    from diffusers_tui.ui.app import DiffusersTuiApp

    app = DiffusersTuiApp(Engine(), outputs_dir="/tmp/diffusers-tui-bench", model="demo")
    samples: dict[str, list[float]] = {"panes": [], "metric": [], "sigma": []}
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until_loaded(pilot, app)
        panel = app.panel
        for name in ("Euler", "DPM++ 2M", "UniPC", "Euler a"):
            panel.select_scheduler(name)
            panel.toggle_mark(name)
        app.query_one("#compare-steps", Input).value = "10,15,20"
        app.query_one("#seeds", Input).value = "4"
        app.query_one("#reference", Input).value = "DPM++ 2M:40"
        await pilot.press("f6")
        screen = app.screen
        await pilot.pause(0.5)
        for _ in range(keys):
            if screen.finished.is_set():
                break
            before = screen.focused
            samples["panes"].append(await _painted_after(app, "tab", lambda: screen.focused is not before))
            await asyncio.sleep(0.02)
        await asyncio.wait_for(screen.finished.wait(), 600)
        await pilot.pause(0.2)
        plot = screen.query_one("#convergence")
        for _ in range(keys):
            before = plot.metric
            samples["metric"].append(await _painted_after(app, "m", lambda: plot.metric != before))
            await asyncio.sleep(0.02)
        await pilot.press("escape")
        app.query_one("#steps", Input).value = "900"
        await pilot.press("ctrl+g")
        await pilot.pause(0.5)
        app.query_one("#scheduler").focus()
        schedule_plot = app.query_one("#schedule-plot")
        for _ in range(keys):
            before = schedule_plot.query_one("#schedule-caption").render()
            # The highlight moves at once; the σ plot follows when its thread has the schedule.
            samples["sigma"].append(await _painted_after(
                app, "f3", lambda: schedule_plot.query_one("#schedule-caption").render() != before))
            await asyncio.sleep(0.02)
        app.post_message(__import__("textual").events.Key("escape", None))
        await asyncio.wait_for(app.idle.wait(), 60)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--study", action="store_true", help="also: keys while a study races, and plots redraw")
    args = parser.parse_args()
    print(f"{'figure':<52}{'p50':>9}{'p95':>9}  goal")

    def report(label: str, samples: list[float], goal: str) -> None:
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{label:<52}{statistics.median(samples) * 1000:>7.1f}ms{p95 * 1000:>7.1f}ms  {goal}")

    for label, during_run, goal in (("key to screen, idle app (for reference)", False, "-"),
                                    ("key to screen during a run", True, "p95 < 50 ms")):
        report(label, asyncio.run(measure(args.keys, during_run)), goal)
    if args.study:
        study = asyncio.run(measure_study(args.keys))
        report(f"tab between panes while a study races ({len(study['panes'])})", study["panes"], "p95 < 50 ms")
        report("m: the convergence plot redrawn", study["metric"], "p95 < 50 ms")
        report("f3 during a run, the σ plot redrawn (includes its thread)", study["sigma"], "- (reported)")


if __name__ == "__main__":
    main()

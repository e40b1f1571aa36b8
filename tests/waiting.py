"""Waiting in tests for the app's own signals (its mode line, its idle event, a condition), never for a fixed time.

Every wait has a deadline, and a wait that reaches it fails the test saying what never happened.
"""

from __future__ import annotations

import asyncio
import time


async def until(pilot, condition, what: str, timeout: float = 15.0, step: float = 0.05) -> None:
    """Wait for `condition()` while the app runs, or fail naming `what` never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout:g} s: {what}")
        if pilot is None:
            await asyncio.sleep(step)
        else:
            await pilot.pause(step)


def mode_line(app) -> str:
    return str(app.query_one("#mode").render())


async def model_loaded(pilot, app, allow_failure: bool = False, timeout: float = 60.0) -> None:
    """Wait until the model's schedulers are listed (the app's own signal: its mode line says the native size)."""
    await until(pilot, lambda: "native size" in mode_line(app) or (allow_failure and "failed" in mode_line(app)),
                "the model loaded", timeout)


async def run_finished(pilot, app, timeout: float = 120.0) -> None:
    """Wait until no run is going (the app's idle event), then one more refresh."""
    try:
        await asyncio.wait_for(app.idle.wait(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the run did not finish within {timeout:g} s") from None
    await pilot.pause()


async def first_step(pilot, app, timeout: float = 15.0) -> None:
    """Wait until the running generation has reported its first step."""
    await until(pilot, lambda: "step " in str(app.query_one("#progress").render()), "a step was reported",
                timeout, step=0.02)

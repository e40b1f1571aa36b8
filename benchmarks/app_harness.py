"""Shared by the benchmarks that drive the real app headless."""

from __future__ import annotations


async def wait_until_loaded(pilot, app, timeout_s: float = 30.0) -> None:
    """Wait for the app's own signal that the model is ready: its mode line names the size."""
    for _ in range(int(timeout_s / 0.05)):
        if "native size" in str(app.query_one("#mode").render()):
            return
        await pilot.pause(0.05)
    raise RuntimeError(f"the model did not load in {timeout_s:.0f} s")

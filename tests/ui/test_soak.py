"""Soak: 200 short runs in the app, cancelled or restarted at random points, leave nothing behind."""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import threading

import pytest
from textual import events
from textual.widgets import Input

from tests.ui.test_app import SIZE
from tests.waiting import model_loaded as _loaded
from tests.waiting import run_finished as _finished
from tests.waiting import until

RUNS = 200


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def _run_started(app, run_id: int) -> None:
    await until(None, lambda: app.run_id >= run_id, f"run {run_id} started", step=0.005)


def _live(kind) -> int:
    return sum(isinstance(item, kind) for item in gc.get_objects())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the resident memory")
async def test_200_runs_with_random_cancels_leave_no_threads_and_flat_memory(make_app, tiny_sd):
    import torch

    from diffusers_tui.engine.request import GenerationResult, StepSnapshot

    chance = random.Random(7)
    app = make_app(str(tiny_sd))
    outcomes = {"finished": 0, "cancelled": 0, "restarted": 0}
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        steps = app.query_one("#steps", Input)
        for run in range(RUNS):
            steps.value = str(chance.randint(2, 12))
            # Keys posted as the terminal sends them: Pilot.press would wait for the app to
            # be idle, which lets every run finish before the cancel arrives.
            started = app.run_id
            app.post_message(events.Key("ctrl+g", None))
            action = chance.choice(["finish", "cancel", "restart"])
            if action != "finish":
                await asyncio.sleep(chance.uniform(0, 0.2))  # from before the first step to after the last
                app.post_message(events.Key("escape" if action == "cancel" else "ctrl+g", None))
            await _run_started(app, started + (2 if action == "restart" else 1))
            await _finished(pilot, app)
            assert app.result is not None and app.result.model_calls <= app.result.total_calls
            outcomes["cancelled" if app.result.cancelled else "finished"] += 1
            outcomes["restarted"] += action == "restart"
            if run == 49:  # warmed up: every cache and pool has been filled once
                await app.workers.wait_for_complete()
                gc.collect()
                threads, resident = threading.active_count(), _resident_mb()
                tensors, snapshots = _live(torch.Tensor), _live(StepSnapshot)
        await app.workers.wait_for_complete()
        gc.collect()
        assert threading.active_count() <= threads
        assert _live(torch.Tensor) <= tensors + 20 and _live(StepSnapshot) <= max(snapshots, 30)
        assert _live(GenerationResult) <= 2  # the one shown (and one being handed over at most)
        assert _resident_mb() - resident < 40, (resident, _resident_mb())
        print(f"threads {threads} -> {threading.active_count()}, resident {resident:.0f} -> {_resident_mb():.0f} MB, "
              f"tensors {tensors} -> {_live(torch.Tensor)}, {outcomes}")
        assert all(outcomes.values()), outcomes  # every path was taken
        await pilot.press("ctrl+g")  # and the app still works
        await _finished(pilot, app)
        assert app.result is not None and not app.result.cancelled

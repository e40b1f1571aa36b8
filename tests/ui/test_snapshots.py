"""Snapshot tests (pytest-textual-snapshot) of the idle screen and a finished run, fixed seed.

Each app gets a fresh Engine, so the model loads after the prompt has its focus, as at a
real start. A snapshot is of the layout, so it must not depend on the CPU's float kernels: the
finished run's picture is replaced by a stand-in made of whole numbers (the model's own
pixels are checked elsewhere, with a tolerance).
"""


from pathlib import Path

from textual.widgets import Checkbox, Input, Log

from diffusers_tui.engine import Engine
from diffusers_tui.ui.app import DiffusersTuiApp
from diffusers_tui.ui.render import render_strips
from diffusers_tui.ui.widgets.live_pane import LivePane
from tests.ui.screen_diff import describe_difference
from tests.waiting import model_loaded, run_finished, until

SIZE = (120, 40)
STORED = Path(__file__).parent / "__snapshots__" / "test_snapshots"
#: The app's start-up workers: the model list, the tidy of the outputs folder, the model's load, the σ plot's data.
START_UP_WORKERS = {"models", "tidy", "load", "schedule"}


def stand_in_picture():
    """A 16x16 picture of whole-number colours: enlarged with NEAREST, the same on every machine."""
    from PIL import Image

    picture = Image.new("RGB", (16, 16))
    picture.putdata([(x * 16, y * 16, 255 - x * 8 - y * 8) for y in range(16) for x in range(16)])
    return picture


async def _wait_loaded(pilot) -> None:
    app = pilot.app
    await model_loaded(pilot, app)
    # Each start-up worker has reported back, so nothing it posts lands after the log is cleared.
    await until(pilot, lambda: not any(worker.group in START_UP_WORKERS and not worker.is_finished
                                       for worker in app.workers), "the start-up workers finished")
    # The log holds timings and paths that differ from run to run.
    app.query_one(Log).clear()
    # The σ plot's line comes from the scheduler's floats (exp and log on this CPU): the snapshot keeps the
    # plot's frame and caption, and the line is checked elsewhere against the engine's own schedule.
    await until(pilot, lambda: app.query_one("#schedule-plot").lines, "the σ schedule drawn")
    app.query_one("#schedule-plot").show_message("σ schedule: drawn (left out of the snapshot)")
    # A focused text field draws its cursor or not by the blink phase it was last drawn in
    # (turning the blink off later does not redraw it): the sampler list, which has no text
    # cursor, holds the focus instead, as when someone walks the samplers.
    app.query_one("#scheduler").focus()
    await pilot.pause()


def matches_stored(snap_compare, app, name: str, run_before) -> None:
    """snap_compare, and on a mismatch the rows that differ (CI's log has no HTML report)."""
    seen: list[str] = []

    async def run_and_keep(pilot) -> None:
        await run_before(pilot)
        await pilot.pause()
        seen.append(pilot.app.export_screenshot())

    if not snap_compare(app, terminal_size=SIZE, run_before=run_and_keep):
        stored = STORED / f"{name}.svg"
        told = describe_difference(stored.read_text(), seen[-1]) if stored.exists() and seen else "no stored SVG"
        raise AssertionError(f"the screen differs from {stored.name}:\n{told}")


def test_idle_screen(snap_compare, tmp_path):
    app = DiffusersTuiApp(Engine(), outputs_dir=str(tmp_path), model="demo")
    matches_stored(snap_compare, app, "test_idle_screen", _wait_loaded)


def test_finished_run_with_a_fixed_seed(snap_compare, tmp_path):
    app = DiffusersTuiApp(Engine(), outputs_dir=str(tmp_path), model="demo")

    async def run(pilot) -> None:
        await _wait_loaded(pilot)
        app.query_one("#seed-lock", Checkbox).value = True
        app.query_one("#seed", Input).value = "7"
        app.query_one("#steps", Input).value = "12"
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        await pilot.pause(0.3)
        # Seconds and it/s differ between machines: replace only those texts.
        app.query_one("#progress").update("step 12/12 · (timing hidden in the snapshot)")
        assert app.result is not None and app.result.image is not None and app.result.model_calls == 12
        pane = app.query_one(LivePane)
        pane.show(render_strips(stand_in_picture(), pane.cell_box))
        pane.caption = "done: 12 model calls · [ ] scrub · ctrl+s save"
        app.query_one(Log).clear()
        await pilot.pause()

    matches_stored(snap_compare, app, "test_finished_run_with_a_fixed_seed", run)

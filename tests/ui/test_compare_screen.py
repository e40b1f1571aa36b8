"""Pilot test of the comparison flow: mark, race, scrub, blink, full size, save, back."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input

from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.ui.app import DiffusersTuiApp
from diffusers_tui.ui.screens.compare import CompareScreen, LanePane
from diffusers_tui.ui.widgets.settings_panel import SettingsPanel

from tests.ui.test_app import SIZE
from tests.waiting import model_loaded as _loaded
from tests.waiting import until


def _caption(pane) -> str:
    return pane.caption


async def test_mark_race_scrub_blink_open_and_save(tmp_path, tiny_sd, engine_for):
    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        app.query_one("#scheduler").focus()
        await pilot.pause(0.2)
        await pilot.press("space")  # the first row, selected at load: the model's own scheduler (PNDM)
        panel = app.query_one(SettingsPanel)
        assert panel.select_scheduler("DPM++ 2M")
        await pilot.pause()
        assert panel.select_schedule("Exponential")  # a schedule type the highlighted sampler offers
        await pilot.press("space")
        assert panel.marked == [("model default", "Automatic"), ("DPM++ 2M", "Exponential")]
        app.query_one("#compare-steps", Input).value = "3,4"
        app.query_one("#reference", Input).value = "Euler:12"
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await asyncio.wait_for(screen.finished.wait(), 120)
        await pilot.pause()
        panes = list(screen.query(LanePane))
        assert [pane.border_title for pane in panes] == ["model default · 3", "model default · 4",
                                                         "DPM++ 2M Exponential · 3",
                                                         "DPM++ 2M Exponential · 4",
                                                         "reference: Euler Exponential · 12"]  # bare: the field's type
        # Every pane ends on its image (live frames during a race: the test below; this tiny model's
        # whole race can end before the first redraw, and then its final pictures stand).
        assert all(pane.frames_shown >= 1 for pane in panes)
        table = screen.query_one("#table", DataTable)
        assert table.row_count == 4
        rows = [table.get_row_at(i) for i in range(4)]
        assert [row[2] for row in rows] == ["4", "5", "3", "4"]  # PLMS makes one call more than its steps
        assert all(float(row[4]) >= 0 for row in rows)  # distances to the reference

        await pilot.press("left")  # every pane one step back, in sync
        await until(pilot, lambda: all(_caption(pane).startswith("step ") for pane in panes), "panes scrubbed")
        assert _caption(panes[0]).startswith("step 4/4") and _caption(panes[2]).startswith("step 3/3")
        await pilot.press("n")  # align by noise level instead
        await pilot.press("left", "left")
        await until(pilot, lambda: all("σ=" in _caption(pane) for pane in panes), "panes aligned by σ")

        await pilot.press("b")  # the focused pane flips to the partner (the reference)
        await until(pilot, lambda: _caption(panes[0]).startswith("blink: reference: Euler Exponential · 12"),
                    "the focused pane blinking to the reference")
        await pilot.press("b")
        await until(pilot, lambda: not _caption(panes[0]).startswith("blink"), "the blink back")

        await pilot.press("f")  # full size
        await until(pilot, lambda: screen.has_class("-single") and screen.query_one("#single").strips, "full size")
        await pilot.press("f")
        assert not screen.has_class("-single")

        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("saved" in line and "grid.png" in line for line in app.log_lines),
                    "the app saying the comparison was saved")
        grids = list((tmp_path / "out").glob("*/*-compare-*/grid.png"))
        assert len(grids) == 1
        folder = grids[0].parent
        images = sorted(p.name for p in folder.glob("0*.png"))
        assert len(images) == 5 and images[-1].startswith("00005-reference-euler-exponential-12")
        first = png_recipe.read_recipe(folder / images[0])
        assert first["request"]["scheduler"] is None and first["scheduler_class"] == "PNDMScheduler"  # its own
        assert any("saved" in line and "grid.png" in line for line in app.log_lines)

        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("ctrl+g")  # the main screen works as before
        await asyncio.wait_for(app.idle.wait(), 120)


async def test_compare_with_nothing_marked_says_what_to_do(tmp_path, tiny_sd, engine_for):
    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await pilot.press("f6")
        assert not isinstance(app.screen, CompareScreen)
        assert "press space" in app.log_lines[-1] and app.query_one("#scheduler").has_class("-bad-value")
        app.query_one("#scheduler").focus()
        await pilot.pause(0.2)
        await pilot.press("space")
        app.query_one("#compare-steps", Input).value = "ten"
        await pilot.press("f6")
        assert not isinstance(app.screen, CompareScreen)
        assert app.query_one("#compare-steps").has_class("-bad-value") and "'ten'" in app.log_lines[-1]


async def test_a_live_frame_during_the_race_is_drawn_in_its_lane(tmp_path, tiny_sd, engine_for):
    """While a race runs, a lane's live frame is drawn in its pane with its step; the race's end replaces it."""
    import threading
    from types import SimpleNamespace

    from PIL import Image

    from diffusers_tui.ui.messages import LaneFrame
    from diffusers_tui.ui.render import render_strips

    engine = engine_for(str(tiny_sd))
    race_may_start, real_compare = threading.Event(), engine.compare

    def compare_when_let(*args, **kwargs):  # the worker thread waits, so the race is still running below
        race_may_start.wait(60)
        return real_compare(*args, **kwargs)

    engine.compare = compare_when_let
    app = DiffusersTuiApp(engine, outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        panel = app.query_one(SettingsPanel)
        for name in ("Euler", "DPM++ 2M"):
            assert panel.select_scheduler(name)
            panel.toggle_mark(name)
        app.query_one("#compare-steps", Input).value = "3"
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        pane = screen.query(LanePane).first()
        strips = render_strips(Image.new("RGB", (32, 32), (200, 40, 40)), (8, 4))
        screen.post_message(LaneFrame(0, SimpleNamespace(step=2, total=3, elapsed_s=0.5), strips))
        await until(pilot, lambda: pane.frames_shown == 1, "the live frame drawn in lane 0")
        assert _caption(pane).startswith("step 2/3 · 2 calls")
        race_may_start.set()
        await asyncio.wait_for(screen.finished.wait(), 120)
        await until(pilot, lambda: pane.frames_shown == 2 and not _caption(pane).startswith("step 2/3"),
                    "the race's final picture replacing the live frame")


async def test_a_race_against_each_runs_own_longer_run_plots_error_against_model_calls(tmp_path, tiny_sd, engine_for):
    """Reference "2x": every lane has its own reference pane; after the race the convergence plot draws the
    engine's points, a line per sampler, and m turns it to the next metric."""
    from diffusers_tui.engine import convergence_data

    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        panel = app.query_one(SettingsPanel)
        for name in ("Euler", "DPM++ 2M"):
            assert panel.select_scheduler(name)
            panel.toggle_mark(name)
        app.query_one("#compare-steps", Input).value = "2,4"
        app.query_one("#reference", Input).value = "2x"
        await pilot.press("f6")
        screen = app.screen
        await asyncio.wait_for(screen.finished.wait(), 120)
        await pilot.pause()
        titles = [pane.border_title for pane in screen.query(LanePane)]
        assert titles[4:] == ["reference: Euler · 4", "reference: Euler · 8", "reference: DPM++ 2M · 4",
                              "reference: DPM++ 2M · 8"]
        plot = screen.query_one("#convergence")
        points = convergence_data(screen.result)
        assert plot.lines == {series: sorted((p["model_calls"], p["rmse"]) for p in points if p["series"] == series)
                              for series in ("Euler", "DPM++ 2M")}
        assert all(len(line) == 2 for line in plot.lines.values())  # 2 and 4 steps: 2 and 4 model calls
        await pilot.press("m")
        assert "latent L2" in str(plot.query_one("#convergence-caption").render())
        assert plot.lines["Euler"] == sorted((p["model_calls"], p["latent_l2"]) for p in points
                                             if p["series"] == "Euler")


async def test_study_axes_and_seeds_typed_in_the_panel_build_the_race(tmp_path, tiny_sd, engine_for):
    """Typed axes and seeds go through the engine's one builder; a bad axis marks its own field."""
    from diffusers_tui.engine import build_comparison

    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        panel = app.query_one(SettingsPanel)
        assert panel.select_scheduler("Euler")
        panel.toggle_mark("Euler")
        assert panel.select_scheduler("UniPC")
        panel.toggle_mark("UniPC")
        app.query_one("#compare-steps", Input).value = "2"
        app.query_one("#axis-x", Input).value = "guidance=2,6"
        app.query_one("#axis-y", Input).value = "cfg=3"
        await pilot.press("f6")
        assert app.query_one("#axis-y").has_class("-bad-value") and "both vary the guidance" in app.log_lines[-1]
        assert not isinstance(app.screen, CompareScreen)
        app.query_one("#axis-y", Input).value = ""
        app.query_one("#seeds", Input).value = "2"
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await asyncio.wait_for(screen.finished.wait(), 120)
        expected = build_comparison(screen.request.base, ["Euler Automatic", "UniPC Automatic"], "2",
                                    axes={"x": "guidance=2,6"}, seeds=2)
        assert screen.request.lanes == expected.lanes and len(screen.result.lanes) == 8
        assert {(lane.result.request.guidance, lane.result.request.seed - screen.request.base.seed)
                for lane in screen.result.lanes} == {(2.0, 0), (2.0, 1), (6.0, 0), (6.0, 1)}
        # The table has a column for the guidance axis and for the seeds, as the printed one has.
        table = screen.query_one("#table", DataTable)
        assert [str(column.label) for column in table.columns.values()][:4] == ["scheduler", "steps", "guidance", "seed"]
        assert {table.get_row_at(index)[2] for index in range(table.row_count)} == {"2", "6"}


async def test_a_saved_study_reopens_from_history_with_its_plots(tmp_path, tiny_sd, engine_for):
    from diffusers_tui.engine import GenerationRequest, build_comparison
    from diffusers_tui.engine.files.saved_study import read_study
    from diffusers_tui.ui.screens.study import StudyScreen

    engine = engine_for(str(tiny_sd))
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=2, preview_method="latent")
    result = engine.compare(build_comparison(base, ["Euler", "UniPC"], "2,4", reference="Euler:12", seeds=2))
    folder = engine.save_comparison(result, tmp_path / "out")
    saved = read_study(folder)
    app = DiffusersTuiApp(engine, outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await pilot.press("f7")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, "the history row of the comparison")
        await pilot.press("v")
        screen = app.screen
        assert isinstance(screen, StudyScreen)
        await until(pilot, lambda: screen.study is not None, "the study read back")
        convergence = screen.query_one("#study-convergence")
        assert convergence.lines == {series: sorted((p["model_calls"], p["rmse"]) for p in saved.figures["convergence"]
                                                    if p["series"] == series) for series in ("Euler", "UniPC")}
        trajectories = screen.query_one("#study-trajectories")
        assert set(trajectories.lines) == {"Euler · 2 steps", "Euler · 4 steps", "UniPC · 2 steps", "UniPC · 4 steps"}
        assert screen.query_one("#study-grid").strips  # the grid's picture
        await pilot.press("escape")
        assert app.screen.query(DataTable)  # back on the history

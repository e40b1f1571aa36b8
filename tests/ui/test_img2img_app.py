"""Pilot test of img2img in the app: the init image and strength fields, and ctrl+t taking the result."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.ui.widgets.live_pane import LivePane
from tests.ui.test_app import SIZE
from tests.waiting import model_loaded, run_finished, until


async def test_ctrl_t_takes_the_result_as_the_next_runs_init_image(make_app, tmp_path):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await model_loaded(pilot, app)
        app.query_one("#steps", Input).value = "6"
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        first = app.result
        assert first.request.init_image is None
        await pilot.press("ctrl+t")  # saved first, then put into the init image field
        field = app.query_one("#init-image", Input)
        await until(pilot, lambda: field.value and Path(field.value).is_file(), "the init image field filled")
        assert any("next run starts from" in line for line in app.log_lines)
        app.query_one("#strength", Input).value = "0.5"
        app.query_one("#size", Input).value = "64x48"  # the picture is 64x64: stretched, and the log says so
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        second = app.result
        assert second.request.init_image == field.value and second.request.strength == 0.5
        assert second.recipe["init_image"]["sha256"] and second.model_calls < 6  # part of the schedule
        assert second.image.size == (64, 48)
        assert any("init image 64x64 resized to 64x48" in line for line in app.log_lines)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(list((tmp_path / "out").rglob("[!.]*.png"))) == 2, "the second save")
        newest = sorted((tmp_path / "out").rglob("[!.]*.png"))[-1]
        assert png_recipe.read_recipe(newest)["request"]["init_image"] == field.value


async def test_a_bad_init_image_or_strength_marks_its_field_and_the_app_stays_up(make_app, tmp_path):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await model_loaded(pilot, app)
        app.query_one("#steps", Input).value = "4"
        field, strength = app.query_one("#init-image", Input), app.query_one("#strength", Input)
        field.value = str(tmp_path / "missing.png")
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        await until(pilot, lambda: field.has_class("-bad-value"), "the init image field marked")
        assert "missing.png" in app.log_lines[-1] and app.result is None
        field.value, strength.value = "", "1.5"
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        assert strength.has_class("-bad-value") and "0 to 1" in app.log_lines[-1]
        strength.value = ""
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        assert app.result is not None and app.result.image is not None


async def test_a_batch_forms_as_a_grid_and_saves_every_image_and_the_grid(make_app, tmp_path):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await model_loaded(pilot, app)
        app.query_one("#steps", Input).value = "4"
        app.query_one("#batch-size", Input).value = "4"
        app.query_one("#seed-lock").value = True
        app.query_one("#seed", Input).value = "30"
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        result = app.result
        assert [item.request.seed for item in result.batch] == [30, 31, 32, 33] and result.image.size == (128, 128)
        assert result.frames[-1].latents.noisy.shape[-2:] == (32, 32)  # the demo's 16 x 16 latents, 2 x 2
        pane = app.query_one(LivePane)
        await pilot.press("ctrl+b")  # image 1 alone: the final picture, then its place in each frame
        await until(pilot, lambda: pane.caption.startswith("image 1/4 (seed 30) · final"), "image 1 alone")
        await pilot.press("left")
        await until(pilot, lambda: pane.caption.startswith("image 1/4 (seed 30) · step 4/4"), "image 1's last step")
        await pilot.press("ctrl+b", "ctrl+b", "ctrl+b", "ctrl+b")  # images 2, 3, 4, then the whole grid again
        await until(pilot, lambda: pane.caption.startswith("step 4/4"), "the whole batch again")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(list((tmp_path / "out").rglob("[!.]*.png"))) == 5, "the four images and the grid")
        await pilot.press("ctrl+b", "ctrl+b")  # image 2 alone; ctrl+t takes it, saved on its own
        await pilot.press("ctrl+t")
        field = app.query_one("#init-image", Input)
        await until(pilot, lambda: field.value.endswith("-31.png"), "image 2 (seed 31) as the init image")
        app.panel.fill({"prompt": "a blue square"})  # another tool's recipe: no init image, one image a run
        assert field.value == "" and app.query_one("#batch-size", Input).value == "1"
        app.query_one("#batch-size", Input).value = "0"
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        assert app.query_one("#batch-size").has_class("-bad-value") and "1 to 16" in app.log_lines[-1]


async def test_the_hires_fix_and_pag_fields_run_both_passes_and_bad_values_mark_the_field(make_app, tmp_path):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await model_loaded(pilot, app)
        app.query_one("#steps", Input).value = "4"
        app.query_one("#hires-scale", Input).value = "2"
        app.query_one("#hires-steps", Input).value = "3"
        app.query_one("#hires-upscaler", Input).value = "lanczos"
        app.query_one("#pag-scale", Input).value = "1.5"
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        result = app.result
        assert result.image.size == (128, 128) and result.model_calls == 7  # 4 + 3: both passes
        assert result.request.hires_upscaler == "Lanczos" and result.request.pag_scale == 1.5
        assert [frame.step for frame in result.frames] == list(range(1, 8))  # the scrubber walks both passes
        for selector, bad, words in (("#hires-scale", "9", "1 to 4"), ("#hires-upscaler", "ESRGAN", "not an upscaler"),
                                     ("#pag-scale", "x", "not a number")):
            widget = app.query_one(selector, Input)
            good, widget.value = widget.value, bad
            await pilot.press("ctrl+g")
            await run_finished(pilot, app)
            assert widget.has_class("-bad-value") and words in app.log_lines[-1], (selector, app.log_lines[-1])
            widget.value = good
        # A recipe fills them, and blank ones give the request's defaults.
        app.query_one("#hires-scale", Input).value = ""
        app.query_one("#pag-scale", Input).value = ""
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        assert app.result.request.hires_scale is None and app.result.request.pag_scale == 0
        app.query_one("#seed-lock").value = True
        app.panel.fill(result.request.to_dict())
        assert app.query_one("#hires-scale", Input).value == "2.0" and app.query_one("#pag-scale", Input).value == "1.5"

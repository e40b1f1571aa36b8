"""What the app sends the engine: every setting reaches its request, and a run's cancel is its own."""

from __future__ import annotations

from diffusers_tui import settings as settings_module
from diffusers_tui.ui.app import DiffusersTuiApp
from tests.ui.test_app import SIZE
from tests.waiting import model_loaded, run_finished


async def test_settings_reach_the_apps_request_through_the_fields_they_fill(tmp_path, engine_for):
    # preview_method has its own field now (the settings panel's "Preview method"): the config fills it.
    config = tmp_path / "config.toml"
    config.write_text('preview_method = "vae"\nsteps = 6\n')
    settings = settings_module.load({}, environ={}, path=config)
    app = DiffusersTuiApp(engine_for("demo"), outputs_dir=str(tmp_path / "out"), model="demo", settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await model_loaded(pilot, app)
        request = app.build_request()
        assert (request.preview_method, request.steps) == ("vae", 6)
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        assert app.result.request.preview_method == "vae" and app.result.model_calls == 6


async def test_escape_pressed_as_the_run_starts_cancels_that_run(tmp_path, engine_for):
    app = DiffusersTuiApp(engine_for("demo"), outputs_dir=str(tmp_path / "out"), model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await model_loaded(pilot, app)
        app.query_one("#steps").value = "200"
        await pilot.press("ctrl+g", "escape")
        await run_finished(pilot, app)
        assert app.result.cancelled and app.result.model_calls < 200

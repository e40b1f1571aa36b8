"""Pilot tests: the history screen and re-runs, export, settings that stick, and terminal graphics."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from textual.widgets import Checkbox, DataTable, Input, TextArea

from diffusers_tui import settings as settings_module
from diffusers_tui.ui import graphics
from diffusers_tui.ui.app import DiffusersTuiApp
from diffusers_tui.ui.widgets.live_pane import LivePane
from tests.ui.test_app import SIZE, _generate
from tests.waiting import model_loaded as _loaded
from tests.waiting import run_finished as _finished
from tests.waiting import until as _until


async def _run_and_save(pilot, app, tmp_path, steps: int, seed: int) -> None:
    app.query_one("#seed", Input).value = str(seed)
    app.query_one("#seed-lock", Checkbox).value = True
    await _generate(pilot, app, steps)
    await _finished(pilot, app)
    saved = len(list((tmp_path / "out").rglob("[!.]*.png")))
    await pilot.press("ctrl+s")
    await _until(pilot, lambda: len(list((tmp_path / "out").rglob("[!.]*.png"))) > saved, "the save")


async def test_history_shows_saves_newest_first_and_loads_a_recipe_that_reruns_it(make_app, tiny_sd, tmp_path):
    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        app.query_one("#prompt", TextArea).text = "the first one"
        await _run_and_save(pilot, app, tmp_path, 3, 101)
        first_image = app.result.image
        app.query_one("#prompt", TextArea).text = "the second one"
        await pilot.press("f3")  # another scheduler
        await _run_and_save(pilot, app, tmp_path, 4, 202)
        await pilot.press("f7")
        table = app.screen.query_one(DataTable)
        await _until(pilot, lambda: table.row_count == 2, "the history rows (read in a thread)")
        assert [str(table.get_row_at(i)[4]) for i in range(2)] == ["the second one", "the first one"]
        await _until(pilot, lambda: app.screen.query_one(LivePane).strips, "the picture")
        await pilot.press("down", "enter")
        assert app.screen.__class__.__name__ == "MainScreen"
        assert app.query_one("#prompt", TextArea).text == "the first one"
        assert app.query_one("#steps", Input).value == "3" and app.query_one("#seed", Input).value == "101"
        assert app.query_one("#seed-lock", Checkbox).value
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        assert app.result.request.seed == 101 and np.array_equal(np.asarray(app.result.image),
                                                                  np.asarray(first_image))


async def test_export_key_writes_the_animation_next_to_the_saved_png(make_app, tiny_sd, tmp_path):
    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 5)
        await _finished(pilot, app)
        await pilot.press("f8")  # not saved yet: it saves the run first
        await _until(pilot, lambda: list((tmp_path / "out").rglob("denoising.webp")), "the export")
        png = next((tmp_path / "out").glob("*/*.png"))
        animation = png.with_suffix("") / "denoising.webp"
        with Image.open(animation) as frames:
            assert frames.n_frames == len(app.frames) + 1  # every preview, then the final image
        assert (png.with_suffix("") / "contact-sheet.png").exists()


async def test_saved_settings_are_what_the_next_start_uses(tiny_sd, tmp_path, engine_for):
    path = tmp_path / "config.toml"
    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path / "out"), model=str(tiny_sd),
                          settings=settings_module.defaults(path))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        app.query_one("#steps", Input).value = "7"
        app.query_one("#guidance", Input).value = "2.5"
        await pilot.press("f3")
        chosen = app.query_one("SettingsPanel").scheduler
        await pilot.press("f9")
        assert path.exists() and f"settings saved in {path}" in app.log_lines[-1]
        app.query_one("#steps", Input).value = "0"
        await pilot.press("f9")  # a bad value is marked, and the file keeps the good ones
        assert app.query_one("#steps", Input).has_class("-bad-value")
    with path.open("a") as config:
        config.write('\n[keys]\ngenerate = "f10"\nno-such-binding = "f11"\n')
    loaded = settings_module.load({}, environ={}, path=path)
    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path / "out"), settings=loaded)
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        assert app.model == str(tiny_sd) and app.query_one("#steps", Input).value == "7"
        assert app.query_one("#guidance", Input).value == "2.5" and app.query_one("SettingsPanel").scheduler == chosen
        assert any("no-such-binding" in line for line in app.log_lines)
        await pilot.press("f10")  # the rebound generate key
        await _finished(pilot, app)
        assert app.result is not None and app.result.request.steps == 7


async def test_a_recipe_given_at_start_fills_the_controls(tiny_sd, tmp_path, engine_for):
    from diffusers_tui.engine.files.reading import parse_a1111

    recipe = parse_a1111("a lighthouse\nNegative prompt: rain\nSteps: 4, Sampler: DDIM, CFG scale: 3, Seed: 9, "
                         "Variation seed: 6, Variation seed strength: 0.5, Eta DDIM: 0.3, Size: 16x16")
    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path), model=str(tiny_sd), recipe=recipe)
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        assert app.query_one("#prompt", TextArea).text == "a lighthouse"
        assert app.query_one("#negative", Input).value == "rain" and app.query_one("#size", Input).value == "16x16"
        assert app.query_one("SettingsPanel").scheduler == "DDIM"
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        request = app.result.request
        assert (request.steps, request.seed, request.guidance, request.scheduler) == (4, 9, 3.0, "DDIM")
        # What no field shows is kept for the runs, and the log says so.
        assert (request.variation_seed, request.variation_strength, request.eta) == (6, 0.5, 0.3)
        log = "\n".join(app.query_one("#log").lines)
        assert "kept from the recipe for the runs that follow" in log and "variation_seed 6" in log


@pytest.mark.parametrize("requested, environ, is_tty, probed, expected, asks", [
    ("kitty", {}, False, None, "kitty", False),  # forced: no question asked
    ("halfblock", {}, True, "sixel", "halfblock", False),
    ("auto", {}, False, "kitty", "halfblock", False),  # not a terminal: tests, pipes
    ("auto", {"TMUX": "/tmp/tmux-0/default,1,0"}, True, "kitty", "halfblock", False),
    ("auto", {"TERM": "screen-256color"}, True, "sixel", "halfblock", False),
    ("auto", {"TERM": "xterm-kitty"}, True, "kitty", "kitty", True),
    (None, {"TERM": "foot"}, True, "sixel", "sixel", True),
    ("auto", {"TERM": "xterm-256color"}, True, "halfblock", "halfblock", True),
])
def test_graphics_are_forced_or_detected_before_the_app_starts(requested, environ, is_tty, probed, expected, asks):
    asked = []

    def probe() -> str:
        asked.append(True)
        return probed

    assert graphics.choose(requested, probe, environ, is_tty) == expected
    assert bool(asked) == asks


def test_a_kitty_before_0_28_gets_half_blocks_since_it_cannot_draw_unicode_placeholders():
    def answers(version: str | None, kitty: bool = True, attributes: str = "62;22") -> str:
        """A terminal's answers, in the order it gives them: XTVERSION, Kitty's query, DA1."""
        return ((f"\x1bP>|{version}\x1b\\" if version else "") + ("\x1b_Gi=31;OK\x1b\\" if kitty else "")
                + f"\x1b[?{attributes}c")

    for version, expected in (("kitty(0.26.5)", "halfblock"), ("kitty(0.27.1)", "halfblock"),
                              ("kitty(0.28.0)", "kitty"), ("kitty(0.35.2)", "kitty"), ("ghostty 1.1.3", "kitty"),
                              (None, "kitty")):
        assert graphics._probe_terminal(ask=lambda: answers(version)) == expected, version
    # Sixel where DA1 lists it (attribute 4), before Kitty's protocol, as textual-image decides.
    assert graphics.kind_from_answers(answers("XTerm(390)", kitty=False, attributes="63;1;4;6")) == "sixel"
    assert graphics.kind_from_answers(answers("XTerm(390)", kitty=False, attributes="63;1;6;14")) == "halfblock"
    assert graphics.kind_from_answers(answers("kitty(0.26.5)", attributes="62;4")) == "sixel"
    assert graphics.kind_from_answers("") == "halfblock"  # nothing answered
    # As Debian's terminals answered under Xvfb: xterm -ti vt340, kitty 0.26.5, plain xterm.
    assert graphics.kind_from_answers("\x1bP>|XTerm(379)\x1b\\\x1b[?63;1;2;4;6;9;15;16;22;28c") == "sixel"
    assert graphics.kind_from_answers("\x1bP>|kitty(0.26.5)\x1b\\\x1b_Gi=31;OK\x1b\\\x1b[?62;c") == "halfblock"
    assert graphics.kind_from_answers("\x1bP>|XTerm(379)\x1b\\\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c") == "halfblock"
    # A Kitty error (not OK) is no support.
    assert graphics.kind_from_answers("\x1b_Gi=31;ENOTSUPPORTED:x\x1b\\\x1b[?62c") == "halfblock"


def test_the_terminal_is_asked_once_and_the_wait_ends_at_its_device_attributes():
    """A real pty with a terminal on the other side that answers at once: no timeout is waited out."""
    import os
    import pty
    import sys
    import threading
    import time

    master, slave = pty.openpty()
    saved_in, saved_out = sys.__stdin__, sys.__stdout__
    asked = []

    def terminal():
        asked.append(os.read(master, 1024))
        os.write(master, b"\x1bP>|XTerm(390)\x1b\\\x1b[?63;1;4c")

    thread = threading.Thread(target=terminal)
    thread.start()
    try:
        sys.__stdin__ = open(slave, "r", closefd=False)
        sys.__stdout__ = open(slave, "w", closefd=False)
        started = time.monotonic()
        answers = graphics.ask_terminal(timeout=60)
        waited = time.monotonic() - started
    finally:
        sys.__stdin__, sys.__stdout__ = saved_in, saved_out
        thread.join(5)
        os.close(master), os.close(slave)
    assert asked[0].decode() == graphics._QUERIES
    assert graphics.kind_from_answers(answers) == "sixel"
    assert waited < 30  # it stopped at the DA1 answer instead of waiting out the minute


@pytest.mark.asyncio
async def test_with_kitty_graphics_the_final_image_is_drawn_by_textual_image(tiny_sd, tmp_path, engine_for):
    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path), model=str(tiny_sd), graphics="kitty")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 3)
        await _finished(pilot, app)
        final, pane = app.query_one("#final-image"), app.query_one(LivePane)
        assert final.display and not pane.display and final.image is app.result.image
        assert type(final).__mro__[1] is graphics.widget_class("kitty") and app.focused is final
        await pilot.press("left")  # back into the steps: half-blocks again
        await _until(pilot, lambda: pane.display, "the live pane")
        assert not final.display and app.focused is pane and app.frame_index == len(app.frames) - 1
        await pilot.press("end")
        await _until(pilot, lambda: final.display, "the final image again")
        app.action_generate()  # what ctrl+g does; checked before this short run ends
        assert pane.display and not final.display
        await _finished(pilot, app)
        assert final.display and final.image is app.result.image


async def test_the_comparison_full_size_view_uses_graphics_for_final_images(tiny_sd, tmp_path, engine_for):
    import asyncio

    from diffusers_tui.ui.screens.compare import CompareScreen
    from diffusers_tui.ui.widgets.settings_panel import SettingsPanel

    app = DiffusersTuiApp(engine_for(str(tiny_sd)), outputs_dir=str(tmp_path), model=str(tiny_sd), graphics="sixel")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        app.query_one(SettingsPanel).toggle_mark("DDIM")
        app.query_one("#compare-steps", Input).value = "3"
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await asyncio.wait_for(screen.finished.wait(), 120)
        await pilot.press("f")  # full size: the final image, through sixel
        await pilot.pause(0.2)
        final = screen.query_one("#single-final")
        assert screen.has_class("-graphics") and final.display and not screen.query_one("#single").display
        assert final.image is screen.result.lanes[0].result.image
        await pilot.press("left")  # a step preview: half-blocks
        await pilot.pause(0.2)
        assert not screen.has_class("-graphics") and screen.query_one("#single").display


def test_a_terminal_that_cannot_be_measured_falls_back_to_half_blocks(monkeypatch):
    """textual-image divides by the terminal's column count, which a bare pty reports as 0."""
    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(graphics, "_prepare", broken)
    warnings = []
    assert graphics.choose("kitty", warn=warnings.append) == "halfblock"
    assert graphics.choose("auto", lambda: "sixel", {"TERM": "foot"}, True, warnings.append) == "halfblock"
    assert len(warnings) == 2 and "ZeroDivisionError" in warnings[0] and "using half-blocks" in warnings[1]

"""The app against hostile files and text: it stays up, says what it skipped, and nothing drives the terminal."""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, PngImagePlugin
from textual.app import App
from textual.widgets import DataTable

from diffusers_tui import settings as settings_module
from diffusers_tui.engine import Engine, RequestError
from diffusers_tui.ui.app import DiffusersTuiApp
from diffusers_tui.ui.widgets.live_pane import LivePane
from tests.ui.test_app import SIZE
from tests.waiting import until as _until

#: What a terminal would act on: C0 controls but newline (and tab), DEL and the C1 controls.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "\x9b31m", "\x1b]52;c;cGF5bG9hZA==\x07", "\x07", "\x08\x08", "\r"]
hostile_text = st.one_of(st.sampled_from(ESCAPES), st.text(max_size=40),
                         st.lists(st.one_of(st.sampled_from(ESCAPES), st.text(max_size=8)), max_size=6).map("".join))


def _recipe_png(path, prompt):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("diffusers-tui", json.dumps({"request": {"prompt": prompt, "negative_prompt": prompt,
                                                           "steps": 3, "seed": 1}}))
    Image.new("RGB", (8, 8), "red").save(path, pnginfo=info)


def _index_line(path: str, prompt, **more) -> str:
    return json.dumps({"path": path, "prompt": prompt, "model": more.pop("model", "demo"), "scheduler": "Euler",
                       "steps": 3, "seed": 1, "time": "2026-12-01T10:00:00", **more})


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(hostile_text, min_size=6, max_size=6))
def test_no_display_path_sends_a_control_character_to_the_terminal(texts, tmp_path_factory):
    """Arbitrary text through the log, notifications, the recipe fields, history rows, captions and model names."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "2026-12-01").mkdir()
    lines = []
    for number, text in enumerate(texts):
        picture = folder / "2026-12-01" / f"{number:05d}-x.png"
        _recipe_png(picture, text)
        lines.append(_index_line(f"2026-12-01/{picture.name}", text, model=text, time=text))
    (folder / "index.jsonl").write_text("\n".join(lines) + "\n")
    try:
        recipe = Engine().read_recipe(folder / "2026-12-01" / "00000-x.png")
    except RequestError as error:  # a NUL in the prompt: refused with one clear line, and the app starts bare
        assert "NUL character" in str(error) and not CONTROL.search(str(error))
        recipe = None

    async def drive() -> list[str]:
        app = DiffusersTuiApp(Engine(), outputs_dir=str(folder), model="demo", recipe=recipe)
        screens = []
        async with app.run_test(size=SIZE) as pilot:
            for text in texts:
                app.log_line(f"note: {text}")
                app.notify(text, title=text)
            app.panel.show_models("demo", list(texts))
            app.query_one(LivePane).show(None, texts[0])
            await pilot.pause()
            screens.append(app.export_screenshot())
            await pilot.press("f7")
            table = app.screen.query_one(DataTable)
            await _until(pilot, lambda: table.row_count == len(texts), "the history rows")
            await _until(pilot, lambda: app.screen.query_one(LivePane).strips, "the picture")
            screens.append(app.export_screenshot())
            await pilot.press("enter")  # load a hostile recipe into the controls
            await pilot.pause()
            screens.append(app.export_screenshot())
        return screens

    for screen in asyncio.run(drive()):
        assert not CONTROL.search(screen), repr(CONTROL.search(screen).group())


def test_the_probe_can_see_a_control_character():
    """The check above would catch an unescaped one: a bare Textual Log passes ESC straight through."""
    from textual.widgets import Log

    class Bare(App):
        def compose(self):
            yield Log()

    async def drive() -> str:
        app = Bare()
        async with app.run_test() as pilot:
            app.query_one(Log).write_line("x\x1b]0;pwned\x07y")
            await pilot.pause()
            return app.export_screenshot()

    assert CONTROL.search(asyncio.run(drive()))


async def test_a_hostile_index_and_a_fifo_picture_leave_the_history_up(tmp_path, engine_for):
    out = tmp_path / "out"
    (out / "2026-12-01").mkdir(parents=True)
    _recipe_png(out / "2026-12-01" / "00001-good.png", "a red circle")
    os.mkfifo(out / "2026-12-01" / "00002-fifo.png")
    lines = [_index_line("2026-12-01/00001-good.png", "a red circle"),
             json.dumps({"path": "2026-12-01/a\u0000b.png", "prompt": "nul"}),
             json.dumps({"path": "c", "kind": "comparison", "schedulers": "Euler"}),
             "[" * 100_000,
             json.dumps({"path": "2026-12-01/00001-good.png", "prompt": ["a", "list"]}),
             _index_line("2026-12-01/00002-fifo.png", "a fifo")]
    (out / "index.jsonl").write_text("\n".join(lines) + "\n")
    app = DiffusersTuiApp(engine_for("demo"), outputs_dir=str(out), model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f7")
        table = app.screen.query_one(DataTable)
        status = app.screen.query_one("#history-status")
        await _until(pilot, lambda: "4 unreadable lines skipped" in str(status.render()), "the skipped count")
        assert table.row_count == 2 and str(table.get_row_at(0)[4]) == "a fifo"
        pane = app.screen.query_one(LivePane)
        await _until(pilot, lambda: "FIFO" in pane.caption, "the FIFO named in the caption")
        await pilot.press("down")
        await _until(pilot, lambda: pane.strips and "00001-good.png" in pane.caption, "the good picture")
        await pilot.press("escape")
        assert app.is_running


async def test_key_names_that_are_not_keys_are_warned_about(tmp_path, engine_for):
    settings = settings_module.defaults()
    settings.values["keys"] = {"generate": "ctrl+g,ctlr+q,f10", "save": "shfit+s"}
    app = DiffusersTuiApp(engine_for("demo"), outputs_dir=str(tmp_path / "out"), model="demo", settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        warnings = [line for line in app.log_lines if "is not a key name" in line]
        assert len(warnings) == 2
        assert "ctlr+q is not a key name" in warnings[0] and "using ctrl+g, f10" in warnings[0]
        assert "shfit+s is not a key name" in warnings[1] and "its default kept" in warnings[1]


def test_an_app_that_dies_on_an_error_exits_non_zero(monkeypatch, capsys):
    from diffusers_tui.commands import main

    def crash_on_mount(self) -> None:
        raise RecursionError("deep")

    monkeypatch.setattr(DiffusersTuiApp, "on_mount", crash_on_mount)
    monkeypatch.setattr(DiffusersTuiApp, "run", lambda self: App.run(self, headless=True, size=SIZE))
    assert main(["--graphics", "halfblock"]) == 1
    assert "the app stopped on an error: RecursionError: deep" in capsys.readouterr().err


async def test_a_long_history_shows_its_newest_rows_first_and_reads_more_as_the_cursor_goes_down(tmp_path, engine_for):
    """A long index is read from its end in a thread; past the first screensful, rows come as they are scrolled to."""
    from diffusers_tui.ui.screens import history as history_screen

    out = tmp_path / "out"
    out.mkdir()
    total = history_screen.AUTO_ROWS + 3 * history_screen.PAGE_ROWS
    with open(out / "index.jsonl", "w") as index:
        for number in range(total):
            index.write(_index_line("2026-12-01/00001-a.png", f"prompt {number}") + "\n")
    app = DiffusersTuiApp(engine_for("demo"), outputs_dir=str(out), model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f7")
        table = app.screen.query_one(DataTable)
        await _until(pilot, lambda: table.row_count >= history_screen.AUTO_ROWS, "the first rows")
        assert str(table.get_row_at(0)[4]) == f"prompt {total - 1}"
        await pilot.pause(0.5)
        assert table.row_count < total  # the rest waits for the cursor
        for _ in range(6):  # a person holding page-down: the cursor reaches the last row read so far
            table.move_cursor(row=table.row_count - 1)
            await pilot.pause(0.3)
        await _until(pilot, lambda: table.row_count == total, "every row, read as the cursor went down")
        assert str(table.get_row_at(total - 1)[4]) == "prompt 0"

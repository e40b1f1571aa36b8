"""Pilot tests of the app, driving the real engine on tiny models and the demo model."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, OptionList, TextArea

from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.ui.widgets.live_pane import LivePane
from tests.fault_injection import fail_at, nan_output
from tests.waiting import first_step as _first_step
from tests.waiting import model_loaded as _loaded
from tests.waiting import run_finished as _finished
from tests.waiting import until as _until

SIZE = (120, 40)


async def _generate(pilot, app, steps: int) -> None:
    """Set the steps field and press ctrl+g, as a user would."""
    app.query_one("#steps", Input).value = str(steps)
    await pilot.press("ctrl+g")


def _progress(app) -> str:
    return str(app.query_one("#progress").render())


async def test_generate_streams_frames_reaches_n_of_n_and_saves(make_app, tmp_path, tiny_sd):
    import threading

    app = make_app(str(tiny_sd))
    frames_seen, frame_drawn, calls = [], threading.Event(), [0]
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        # The tiny model's whole run is quicker than a frame's decode on a busy machine: its third model call
        # waits (in the worker thread) until a live frame of the first two is on screen, or 30 s.
        def hold(module, args):
            calls[0] += 1
            if calls[0] == 3:
                frame_drawn.wait(30)

        slowed = app.engine.loaded_model(str(tiny_sd)).pipeline.unet.register_forward_pre_hook(hold)
        pane = app.query_one(LivePane)
        original_show = pane.show

        def counting_show(pixels, caption=None):
            if pixels is not None:
                frames_seen.append(caption)
                if str(caption).startswith("step "):
                    frame_drawn.set()
            original_show(pixels, caption)

        pane.show = counting_show
        prompt = app.query_one("#prompt", TextArea)
        prompt.text = ""
        prompt.focus()
        await pilot.press(*"a blue square")
        await pilot.press("f3")  # next scheduler
        chosen = app.query_one("#scheduler", OptionList)
        name = chosen.get_option_at_index(chosen.highlighted).id
        app.query_one("#steps", Input).value = "6"
        await pilot.press("f5")  # steps up: 7
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        slowed.remove()
        assert app.result is not None and not app.result.cancelled
        assert app.result.request.prompt == "a blue square" and app.result.request.scheduler == name
        assert app.result.request.steps == 7
        assert len(frames_seen) > 1 and frames_seen[0].startswith("step ")  # the pane changed while running
        assert "step 7/7" in _progress(app) or f"/{app.result.total_calls}" in _progress(app)
        assert app.query_one(LivePane).strips
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: list((tmp_path / "out").rglob("[!.]*.png")), "the save")
        saved = list((tmp_path / "out").rglob("[!.]*.png"))
        assert len(saved) == 1
        assert png_recipe.read_recipe(saved[0])["request"]["prompt"] == "a blue square"


async def test_cancel_mid_run_then_generate_again(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 400)
        await _first_step(pilot, app)
        await pilot.press("escape")
        await _finished(pilot, app)
        assert app.result.cancelled and app.result.model_calls < 400
        await _generate(pilot, app, 3)
        await _finished(pilot, app)
        assert not app.result.cancelled and app.result.model_calls == app.result.total_calls


async def test_scrubber_walks_every_step_after_a_run(make_app, tiny_sd):
    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 4)
        await _finished(pilot, app)
        assert app.focused is app.query_one(LivePane)
        await pilot.press("left")
        await pilot.pause(0.2)
        assert app.frame_index == len(app.frames) - 1
        await pilot.press("home")
        await pilot.pause(0.2)
        assert app.frame_index == 0
        assert app.query_one(LivePane).caption.startswith("step 1/")
        await pilot.press("right_square_bracket")
        await pilot.pause(0.2)
        assert app.query_one(LivePane).caption.startswith("step 2/")


async def test_bad_field_is_marked_and_the_next_run_works(make_app, tiny_sd):
    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        steps = app.query_one("#steps", Input)
        steps.value = "zero"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert steps.has_class("-bad-value") and app.result is None
        assert any("steps: 'zero' is not a whole number (1 to 1000)" in line for line in app.log_lines)
        steps.value = "2"
        fps = app.query_one("#fps", Input)
        fps.value = "0"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert fps.has_class("-bad-value") and app.result is None
        assert "fps: 0 frames per second is outside 1 to 60" in app.log_lines[-1]
        fps.value = "5"
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        assert not steps.has_class("-bad-value") and not fps.has_class("-bad-value") and app.result is not None


async def test_a_failing_model_leaves_the_app_up(make_app, tmp_path):
    app = make_app("org/not-in-the-cache")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app, allow_failure=True)
        assert "hf download org/not-in-the-cache" in "\n".join(app.log_lines)
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        assert app.result is None and "failed" in _progress(app)
        app.switch_model("demo")  # what choosing it in the model selector does
        await _loaded(pilot, app)
        await _generate(pilot, app, 2)
        await _finished(pilot, app)
        assert app.result is not None


async def test_out_of_memory_gets_a_helpful_message(make_app, tiny_sd, monkeypatch):
    import torch

    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        unet = app.engine.loaded_model(str(tiny_sd)).pipeline.unet
        fail_at(monkeypatch, unet, 2, lambda: torch.OutOfMemoryError("CUDA out of memory (simulated)"))
        await _generate(pilot, app, 3)
        await _finished(pilot, app)
        assert any("out of memory at model call 2 of" in line and "smaller size" in line
                   for line in app.log_lines)
        monkeypatch.undo()
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        assert app.result is not None and not app.result.cancelled


async def test_resize_refits_the_pane_and_tiny_terminals_get_a_message(make_app, tiny_sd):
    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 2)
        await _finished(pilot, app)
        before = app._pane_cells
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.3)
        assert app._pane_cells != before
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert app.screen.has_class("-too-small")
        assert "at least 80x24" in str(app.query_one("#too-small").render())


async def test_help_screen_and_command_palette_list_every_binding(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        text = str(app.screen.query_one("Static").render())
        for binding in app.BINDINGS:
            assert binding.tooltip in text
        assert "cancels that run" in text
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Generate", "Cancel", "Save", "Next sched", "Compare"} <= set(titles)
        assert all(binding.id and binding.tooltip for binding in app.BINDINGS)
        for key in ("escape", "q", "question_mark"):  # every closing key, and the app stays up
            await pilot.press("f1")
            assert app.screen.__class__.__name__ == "HelpScreen"
            await pilot.press(key)
            assert app.screen.__class__.__name__ == "MainScreen"


async def test_generate_while_running_cancels_and_starts_anew(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 400)
        first_run = app.run_id
        await _first_step(pilot, app)
        await _generate(pilot, app, 3)
        await _finished(pilot, app)
        assert app.run_id == first_run + 1
        assert app.result.request.steps == 3 and not app.result.cancelled
        assert any("cancelled the running generation" in line for line in app.log_lines)


#: Steps for a run that lasts while a test works beside it. Not 1000: the demo's DPM-Solver (diffusers) goes
#: NaN at 1000 steps (as many as its training timesteps), and the preflight refuses that count.
LONG_RUN = 900


async def test_typing_and_focus_moves_work_during_a_run(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        from textual import events

        await _generate(pilot, app, LONG_RUN)
        await pilot.press("ctrl+e")
        prompt = app.query_one("#prompt", TextArea)
        prompt.text = ""
        # Keys are posted as a terminal sends them; Pilot.press would wait for an idle app,
        # which never comes while frames stream in.
        for character in "typed while running":
            key = "space" if character == " " else character
            prompt.post_message(events.Key(key, character))
        await _until(None, lambda: prompt.text == "typed while running", "the typed prompt", step=0.01)
        assert app.running and prompt.text == "typed while running"
        app.post_message(events.Key("tab", None))
        await _until(None, lambda: app.focused is not prompt, "focus moved off the prompt", step=0.01)
        assert app.running and app.focused is not prompt
        await pilot.press("escape")
        await _finished(pilot, app)


async def test_quitting_mid_run_exits_promptly(make_app):
    import time

    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, LONG_RUN)
        await _first_step(pilot, app)
        started = time.perf_counter()
        await pilot.press("ctrl+q")
    # The worker stops at its next step; a whole run would take far longer.
    assert app.result is None or app.result.model_calls < LONG_RUN
    assert time.perf_counter() - started < 20


#: (field, bad value, what the message must say): each marks its field, and nothing runs.
BAD_VALUES = [
    ("#steps", "0", "steps: 0 is outside 1 to 1000"),
    ("#steps", "-5", "steps: -5 is outside 1 to 1000"),
    ("#steps", "99999", "steps: 99999 is outside 1 to 1000"),
    ("#steps", "2.5", "steps: '2.5' is not a whole number (1 to 1000)"),
    ("#guidance", "strong", "guidance: 'strong' is not a number (0 to 50)"),
    ("#guidance", "51", "guidance: 51.0 is outside 0 to 50"),
    ("#guidance", "nan", "guidance: nan is outside 0 to 50"),
    ("#seed", "-1", "seed: -1 is outside 0 to 18446744073709551615"),
    ("#seed", str(2**64), "seed: 18446744073709551616 is outside 0 to 18446744073709551615"),
    ("#size", "big", "size: 'big' is not a size like 512x512"),
    ("#size", "100", "width: 100 is not a multiple of 8 (8 to 4096)"),
    ("#size", "8192", "width: 8192 is outside 8 to 4096"),
    ("#preview-every", "0", "preview_every: 0 is outside 1 to 1000"),
    ("#fps", "120", "fps: 120 frames per second is outside 1 to 60"),
    ("#prompt", "x" * 10_001, "prompt: is 10001 characters; the limit is 10000"),
    # These two need the model: the run starts, and fails before its first step.
    ("#size", "24", "width: 24 is not a multiple of 16, this model's factor"),
    ("#prompt", "   ", "prompt: is empty: type what to draw"),
]


async def test_every_bad_value_marks_its_field_and_says_the_valid_range(make_app):
    app = make_app("demo")  # its size factor is 16: 24 passes the request's check, not the model's
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        app.query_one("#seed-lock").value = True
        for selector, bad, expected in BAD_VALUES:
            widget = app.query_one(selector)
            good = widget.text if isinstance(widget, TextArea) else widget.value
            if isinstance(widget, TextArea):
                widget.text = bad
            else:
                widget.value = bad
            shown = len(app._notifications)
            await pilot.press("ctrl+g")
            await _finished(pilot, app)
            assert widget.has_class("-bad-value"), (selector, bad)
            assert expected in app.log_lines[-1], (selector, bad, app.log_lines[-1])
            assert len(app._notifications) > shown and app.result is None
            if isinstance(widget, TextArea):
                widget.text = good
            else:
                widget.value = good
        await _generate(pilot, app, 2)  # all fixed: the app is still up and runs
        await _finished(pilot, app)
        assert app.result is not None and not app.query(".-bad-value")


async def test_a_failed_save_keeps_the_image_and_ctrl_o_saves_it_elsewhere(make_app, tiny_sd, tmp_path):
    app = make_app(str(tiny_sd))
    blocker = tmp_path / "out"
    blocker.write_text("a file where the outputs folder should be")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        await _generate(pilot, app, 2)
        await _finished(pilot, app)
        kept = app.result
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: any("Not a directory" in line for line in app.log_lines), "the failed save")
        assert "kept in memory: press ctrl+o" in app.log_lines[-1] and app.result is kept
        await pilot.press("ctrl+o")
        await pilot.pause()
        folder = app.screen.query_one("#save-to-folder", Input)
        folder.value = str(tmp_path / "elsewhere")
        await pilot.press("enter")
        await _until(pilot, lambda: list((tmp_path / "elsewhere").rglob("[!.]*.png")), "the save elsewhere")
        saved = list((tmp_path / "elsewhere").rglob("[!.]*.png"))
        assert len(saved) == 1 and png_recipe.read_recipe(saved[0])["request"]["seed"] == kept.request.seed
        assert app.outputs_dir == str(tmp_path / "elsewhere")
    assert blocker.read_text() == "a file where the outputs folder should be"


async def test_nan_latents_stop_the_run_and_the_last_good_preview_stays(make_app, tiny_sd, monkeypatch):
    app = make_app(str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        fail_at(monkeypatch, app.engine.loaded_model(str(tiny_sd)).pipeline.unet, 3, output=nan_output)
        await _generate(pilot, app, 5)
        await _finished(pilot, app)
        assert app.result.stopped and app.result.shown_image is app.engine.preview(app.frames[-1], "auto")
        caption = app.query_one(LivePane).caption
        assert len(app.frames) == 2 and caption.startswith(f"stopped at step 3/{app.result.total_calls}")
        assert "NaN" in app.log_lines[-2]
        monkeypatch.undo()
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        assert app.result.stopped is None and app.result.image is not None


async def test_the_demo_says_which_words_it_does_not_know(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        prompt = app.query_one("#prompt", TextArea)
        assert "colours red, green, blue, yellow, purple, white" in str(prompt.tooltip)
        prompt.text = "a yellow triangle on a black background"
        await _generate(pilot, app, 2)
        await _finished(pilot, app)
        notes = [n for n in app._notifications if "does not know" in n.message]
        assert len(notes) == 1 and "'black'" in notes[0].message and "shapes circle, square, triangle" in notes[0].message
        assert any("does not know the word 'black'" in line for line in app.log_lines)


async def test_a_preview_method_change_reaches_the_running_generation(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        app.query_one("#preview-method").value = "latent"
        await _generate(pilot, app, 200)
        await _first_step(pilot, app)
        app.query_one("#preview-method").value = "vae"
        await pilot.pause()
        assert app._live.method == "vae"
        await pilot.press("escape")
        await _finished(pilot, app)


async def test_the_sampler_list_is_grouped_by_tool_and_narrowed_as_you_type(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        options = app.query_one("#scheduler", OptionList)

        def rows() -> list[str]:
            return [str(options.get_option_at_index(i).prompt).strip() for i in range(options.option_count)]

        everything = rows()
        assert everything[0].startswith("default ·") and "A1111 · the engine" in everything
        assert everything.index("A1111 · the engine") < everything.index("ComfyUI · the engine") < everything.index(
            "diffusers' classes")
        app.query_one("#sampler-filter", Input).focus()
        await pilot.press(*"comfy 3m")
        await pilot.pause()
        assert rows() == ["ComfyUI · the engine", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu"]
        assert app.query_one("SettingsPanel").scheduler == "dpmpp_3m_sde"  # the first match is the choice
        # Its schedule types are ComfyUI's, with what Automatic means for it.
        schedule_labels = [str(label) for label, _value in app.query_one("#schedule")._options]
        assert "Automatic (normal)" in schedule_labels and "kl_optimal" in schedule_labels
        await pilot.press(*"x")  # nothing matches: nothing to choose, and nothing breaks
        await pilot.pause()
        assert [row for row in rows() if not row.endswith("engine")] == []
        for _ in range(len("comfy 3mx")):
            await pilot.press("backspace")
        await pilot.pause()
        assert len(rows()) == len(everything)


async def test_keys_pressed_before_the_lower_fields_mount_run_once_they_have(make_app, monkeypatch):
    """The fields below the sampler list mount after the first frame; a key typed ahead (steps up, then
    generate) waits for them and runs in order, instead of failing on a field that is not there yet."""
    from diffusers_tui.ui.widgets.settings_panel import SettingsPanel

    release = asyncio.Event()
    mount_for_real = SettingsPanel._mount_fields_below_the_fold

    async def held_back(panel):
        async def when_released():
            await release.wait()
            await mount_for_real(panel)
        # A task of its own: the panel's message loop stays free, as it is while the real mount waits.
        panel.run_worker(when_released())

    monkeypatch.setattr(SettingsPanel, "_mount_fields_below_the_fold", held_back)
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.panel.complete and not app.query("#steps")
        assert app.focused is app.query_one("#prompt", TextArea)  # the prompt takes keys from the start
        await pilot.press("f5", "f5", "ctrl+g")
        assert app.run_id == 0  # nothing ran against missing fields
        release.set()
        await _until(pilot, lambda: app.run_id == 1, "the held generate")
        assert app.query_one("#steps", Input).value == "22"
        await _finished(pilot, app)
        assert app.result.request.steps == 22 and not app.result.cancelled


async def test_the_schedule_plot_follows_the_highlighted_sampler_its_schedule_type_and_steps(make_app):
    """Before any run: the plot draws the engine's σ schedule for what is chosen, and the sampler's own beside it."""
    from textual.widgets import Select

    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        plot = app.query_one("#schedule-plot")
        app.panel.select_scheduler("DPM++ 2M")
        await _until(pilot, lambda: "DPM++ 2M · Automatic · 20" in str(plot.query_one("#schedule-caption").render()),
                     "the plot of DPM++ 2M's own schedule")
        assert plot.lines == {"Automatic": app.engine.sigma_schedule("demo", "DPM++ 2M", "Automatic", 20)}
        app.query_one("#schedule", Select).value = "Exponential"
        app.query_one("#steps", Input).value = "9"
        await _until(pilot, lambda: "Exponential" in plot.lines and len(plot.lines["Exponential"]) == 10,
                     "the plot of the Exponential schedule at 9 steps")
        exponential = app.engine.sigma_schedule("demo", "DPM++ 2M", "Exponential", 9)
        assert plot.lines == {"Exponential": exponential,
                              "Automatic": app.engine.sigma_schedule("demo", "DPM++ 2M", "Automatic", 9)}
        assert plot.lines["Exponential"] != plot.lines["Automatic"]  # the check can fail: the types differ
        app.query_one("#steps", Input).value = "lots"
        await _until(pilot, lambda: "whole number" in str(plot.query_one("#schedule-caption").render()),
                     "the plot saying the steps are not a number")


async def test_the_schedule_plot_takes_the_logs_place_while_a_sampler_is_being_chosen(make_app):
    app = make_app("demo")
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        plot, log = app.query_one("#schedule-plot"), app.query_one("#log")
        assert log.display and not plot.display  # the log's lines need its width
        await pilot.press("f3")  # walking the samplers: the plot takes the log's place
        assert plot.display and not log.display
        await pilot.press("ctrl+g")  # a run's notes go to the log
        await _finished(pilot, app)
        assert log.display and not plot.display
        app.query_one("#scheduler").focus()
        await pilot.pause()
        assert plot.display and not log.display
        app.query_one("#prompt").focus()
        await pilot.pause()
        assert log.display and not plot.display
        assert plot.lines  # drawn all along, shown or not


async def test_the_lora_field_lists_the_folders_files_narrows_as_you_type_and_runs_with_them(tmp_path, tiny_sd):
    """The LoRA list shows the LoRA folders' files; typing narrows it, enter adds one at weight 1, a weight typed
    after it is the run's, and the run's recipe records the file. A bad weight marks the field."""
    from diffusers_tui.engine import Engine, LoadOptions
    from diffusers_tui.ui.app import DiffusersTuiApp
    from tests.tiny_loras import make_lora

    folder = tmp_path / "loras"
    make_lora(tiny_sd, folder / "styles", 1)  # in a subfolder: found by its name, as A1111 finds it
    make_lora(tiny_sd, folder, 2)
    engine = Engine(LoadOptions(lora_dirs=(str(folder),)))
    app = DiffusersTuiApp(engine, outputs_dir=str(tmp_path / "out"), model=str(tiny_sd))
    async with app.run_test(size=SIZE) as pilot:
        await _loaded(pilot, app)
        listed = app.query_one("#lora-list", OptionList)
        await _until(pilot, lambda: listed.option_count == 2 and listed.get_option_at_index(0).id, "the LoRA list")
        assert [listed.get_option_at_index(i).id for i in range(2)] == ["diffusers-2", "diffusers-1"]
        field = app.query_one("#loras", Input)
        field.focus()
        await pilot.press(*"-1")
        await pilot.pause()
        assert listed.option_count == 1 and listed.get_option_at_index(0).id == "diffusers-1"
        field.value = ""
        await pilot.pause()  # the list fills again, unfiltered
        listed.focus()
        await pilot.press("down", "enter")
        assert field.value == "diffusers-1:1, " and app.focused is field
        field.value = "diff"  # enter in the field takes the list's first match
        await pilot.pause()
        field.focus()
        await pilot.press("enter")
        assert field.value == "diffusers-2:1, "
        field.value = "diffusers-1:0.6"
        app.query_one("#steps", Input).value = "3"
        await pilot.press("ctrl+g")
        await _finished(pilot, app)
        assert app.result.request.loras == (("diffusers-1", 0.6),)
        assert [(lora["weight"], lora["path"]) for lora in app.result.recipe["loras"]] == [
            (0.6, str((folder / "styles" / "diffusers-1.safetensors").resolve()))]
        field.value = "diffusers-1:lots"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert field.has_class("-bad-value")

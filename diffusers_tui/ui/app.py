"""The App: the key bindings, routing between screens, model loading, and the one generation worker.

It talks to the engine only through `diffusers_tui.engine` and holds no torch or diffusers
object: what it keeps of a run is the GenerationResult the engine handed out. The fields
live in the settings panel, the pictures in the main screen, what is kept in the Keeper
and the worker's body in ui.generation; this module is a little long because every
key's action and every worker's message is routed here, and that is its one job.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from typing import Iterable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, Input, Log, OptionList, Select, TextArea

from diffusers_tui import settings as settings_module
from diffusers_tui.engine import (MAX_STEPS, MODEL_DEFAULT, GenerationRequest, RequestError, UserFacingError, is_clean, list_loras, prompt_note,
                                  prompt_syntax_note, random_seed, guidance_note, init_image_note, sampler_note,
                                  shown)
from diffusers_tui.ui import generation, render, terminal_output
from diffusers_tui.ui.failures import describe_failure
from diffusers_tui.ui.bindings import APP_BINDINGS, COMPARE_BINDINGS, HISTORY_BINDINGS, STUDY_BINDINGS
from diffusers_tui.ui.keeper import Keeper
from diffusers_tui.ui.messages import (Exported, InitImageReady, ModelLoaded, ModelLoadFailed, ModelsListed, Notice, RunFailed,
                                       RunFinished, Saved, SaveFailed, ScheduleComputed, StepRendered)
from diffusers_tui.ui.screens.main import MainScreen, main_layout
from diffusers_tui.ui.widgets.live_pane import LivePane
from diffusers_tui.ui.widgets.sampler_list import SchedulerList
from diffusers_tui.ui.widgets.settings_panel import SettingsPanel

def _is_compare_screen(screen) -> bool:
    """Whether `screen` is the comparison screen, without importing it (it loads when first opened)."""
    module = sys.modules.get("diffusers_tui.ui.screens.compare")
    return module is not None and isinstance(screen, module.CompareScreen)


#: A small model's forward pass is mostly Python, so the worker holds the GIL most of the time; a 1 ms
#: switch interval (default 5 ms) hands it back to key presses, and to the model from the preview
#: thread, sooner.
SWITCH_INTERVAL_S = 0.001

#: Cyclic-collector thresholds while the app runs. Converting a frame makes about 10,000
#: small objects; at Python's default (700, 10, 10) the collector ran a dozen times per
#: frame and took a third of the conversion time.
GC_THRESHOLDS = (20_000, 10, 10)


class DiffusersTuiApp(App):
    """Type a prompt, pick a scheduler and steps, watch every denoising step, keep the result."""

    CSS_PATH = "app.tcss"
    TITLE = "diffusers-tui"
    BINDINGS = APP_BINDINGS

    def __init__(self, engine, outputs_dir: str | None = None, model: str | None = None, model_folders=(),
                 settings=None, recipe=None, graphics: str = "halfblock") -> None:
        super().__init__()
        #: The output filter on the driver (ui.terminal_output), once mounted in a real terminal.
        self._output = None
        self.engine = engine
        #: Effective settings (see diffusers_tui.settings); the built-in defaults when not given.
        self.settings = settings or settings_module.defaults()
        self.outputs_dir = outputs_dir or self.settings["outputs"]
        self.model = model or self.settings["model"]
        #: A recipe (--from) to put into the controls at start.
        self.recipe = recipe
        #: How a finished image is shown: "halfblock", "kitty" or "sixel" (see ui.graphics).
        self.graphics = graphics
        #: Scheduler to select once the next model has loaded (from settings or a recipe).
        self._wanted_scheduler: str | None = self.settings["scheduler"]
        #: Saving, export, history and settings (a controller with a stated interface).
        self.keeper = Keeper(self, lambda: self.query_one(SettingsPanel))
        #: Models the selector lists (the machine's), and the one loaded and ready (None while loading).
        self.model_names: list[str] = []
        self.loaded_model: str | None = None
        self.summary = None  # the loaded model's ModelSummary
        self._live = None  # the running generation's LivePreview (its method can change mid-run)
        self.model_folders = tuple(model_folders)
        #: The last run's result: it owns its frames (every preview, for the scrubber).
        self.result = None
        self.frame_index: int | None = None
        #: Which image of a batch the pane shows after the run (None: the whole grid); ctrl+b steps through them.
        self.image_of_batch: int | None = None
        self.run_id = 0
        self.running = False
        self._cancel_event: threading.Event | None = None
        self._pane_cells = (64, 32)
        self.log_lines: list[str] = []  # what the log pane shows, kept whole
        #: Set whenever no run is going; tests and benchmarks wait on it instead of sleeping.
        self.idle = asyncio.Event()
        self.idle.set()
        #: What the schedule plot was last asked to show (model, sampler, schedule type, steps).
        self._schedule_key: tuple | None = None
        #: Actions (keys) asked for before the settings panel was complete; None once it is.
        self._held_actions: list | None = []

    @property
    def frames(self) -> tuple:
        """The last run's previews, as its result holds them."""
        return self.result.frames if self.result is not None else ()

    def get_default_screen(self) -> Screen:
        return MainScreen(self.graphics)

    def compose(self) -> ComposeResult:
        yield from main_layout(self.model, self.graphics)

    def on_mount(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        gc.set_threshold(*GC_THRESHOLDS)
        self._install_output_filter()
        #: "truecolor", or "256": frames dithered to xterm's palette (see ui.render).
        self.colour_depth = render.colour_depth_for(self.console.color_system)
        for line in render.colour_depth_note(self.console.color_system):
            self.log_line(line)
        keys = self.keeper.warn_about_settings({binding.id for binding in self._every_binding() if binding.id})
        if keys:
            self.set_keymap(keys)

    async def on_settings_panel_completed(self) -> None:
        """Every field is mounted: fill them, start the workers, and run the keys pressed before."""
        from diffusers_tui.ui.widgets.schedule_plot import SchedulePlot  # numpy and textual-plot: after the first frame

        await self.query_one("#main").mount(SchedulePlot(id="schedule-plot"), after="#log")
        self.panel.apply_settings(self.settings)
        if self.recipe is not None:
            self.apply_recipe(self.recipe, switch_model=False)
        # The workers import torch and diffusers, holding the GIL for seconds: they start once
        # the first frame is on the screen, so the app is seen (and typed into) at once.
        self.call_after_refresh(self._start_background_work)
        held, self._held_actions = self._held_actions, None
        for action in held:
            await super().run_action(*action)

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:
        """Actions wait for the settings panel's last fields (a few frames after start), then run in order."""
        if self._held_actions is not None:
            self._held_actions.append((action, default_namespace, namespaces))
            return True
        return await super().run_action(action, default_namespace, namespaces)

    def _start_background_work(self) -> None:
        self.list_models()
        self.tidy_outputs(self.outputs_dir)
        self._start_loading(self.model)

    @work(thread=True, group="tidy")
    def tidy_outputs(self, outputs_dir: str) -> None:
        """Stale temporary files and saves a killed process left: tidied off the UI thread, and told."""
        try:
            found = self.engine.tidy_outputs(outputs_dir)
        except OSError as error:
            found = [f"could not tidy {outputs_dir}: {error.strerror or error}"]
        for line in found:
            self.post_message(Notice(line))

    def on_notice(self, message: Notice) -> None:
        self.log_line(f"note: {message.text}")
        self.notify(message.text, title="Outputs", severity="warning", timeout=12)

    @property
    def panel(self) -> SettingsPanel:
        return self.main_screen.query_one(SettingsPanel)  # whichever screen is on top

    def _every_binding(self) -> list[Binding]:
        return [*self.BINDINGS, *LivePane.BINDINGS, *SchedulerList.BINDINGS, *COMPARE_BINDINGS, *HISTORY_BINDINGS,
                *STUDY_BINDINGS]

    #: Actions that read or change the main screen's fields: off while another screen is up.
    MAIN_SCREEN_ACTIONS = {"generate", "compare", "cancel", "save", "scheduler", "steps", "new_seed", "lock_seed",
                           "toggle_preview", "focus_prompt", "focus_pane", "scrub", "history", "export",
                           "save_settings", "batch_image"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in self.MAIN_SCREEN_ACTIONS and not isinstance(self.screen, MainScreen):
            return False
        if action == "save_to" and not (isinstance(self.screen, MainScreen) or _is_compare_screen(self.screen)):
            return False
        return True

    def pane_resized(self, cells: tuple[int, int]) -> None:
        """The main pane's cell box changed: frames from now on are converted to it."""
        if cells != self._pane_cells:
            self._pane_cells = cells
            self._show_frame(self.frame_index)

    def log_line(self, text: str) -> None:
        text = shown(text, 2000)  # file names, prompts and exception messages are untrusted
        self.log_lines.append(text)
        self.query_one("#log", Log).write_line(text)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every notification, from every screen: its text escaped, never read as markup."""
        super().notify(shown(message, 2000, multiline=True), title=shown(title, 200), severity=severity,
                       timeout=timeout, markup=False)

    def _mark_invalid(self, field: str, message: str) -> None:
        self.panel.mark_invalid(field)
        self.log_line(f"error: {message}")
        self.notify(message, title="Check this setting", severity="error", timeout=8)

    # ----- models -----
    def _start_loading(self, model: str) -> None:
        """Load `model` in a thread; the mode line counts the seconds until it is ready."""
        self.loaded_model = None
        self.log_line(f"loading {model} in the background (you can type meanwhile)...")
        self.panel.show_loading(model)
        self.load_model(model)

    @work(thread=True, group="models")
    def list_models(self) -> None:
        try:
            names = [info.name for info in self.engine.models() if not info.reason]
        except Exception:  # noqa: BLE001 - listing is a convenience; the named model still loads
            names = []
        folders = self.engine.options.lora_dirs
        try:
            loras = list_loras(folders)
        except Exception:  # noqa: BLE001 - a folder that cannot be read leaves the list empty, and says so
            loras = []
        where = ", ".join(shown(str(folder), 80) for folder in folders)
        no_loras = f"no LoRA files in {where}" if folders else "no LoRA folder: set lora_dir (config) or --lora-dir"
        self.post_message(ModelsListed(names, loras, no_loras))

    def on_models_listed(self, message: ModelsListed) -> None:
        if not any(isinstance(screen, MainScreen) for screen in self.screen_stack):
            return  # the app is closing: nothing to show the list in
        self.model_names = list(message.names)
        self.panel.show_models(self.model, self.model_names)
        self.panel.show_loras(message.loras, message.no_loras)

    @work(thread=True, exclusive=True, group="load")
    def load_model(self, model: str) -> None:
        try:
            self.post_message(ModelLoaded(self.engine.load(model)))
        except Exception as error:  # noqa: BLE001 - the worker always reports back
            self.post_message(ModelLoadFailed(model, describe_failure(error)[0]))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        summary = message.summary
        if summary.name != self.model:
            return
        self.loaded_model, self.summary = summary.name, summary
        # torch, diffusers and the model are millions of long-lived objects; moving them
        # out of the collector's sight keeps full collections (seen pausing the UI for
        # 0.3 s mid-run) short.
        gc.freeze()
        # A newly loaded model starts on the scheduler asked for (settings, a recipe), else its own.
        wanted, self._wanted_scheduler = self._wanted_scheduler, None
        available = {status.entry.name for status in summary.statuses if status.available}
        if wanted and wanted not in available:
            self.log_line(f"note: {wanted} is not available for {summary.name}: its own scheduler is selected")
            wanted = None
        self.panel.show_loaded(summary, wanted)
        self.plot_schedule()
        self.log_line(f"loaded {summary.name}: {summary.mode}, {len(available)} schedulers available")
        for note in summary.notes:
            self.log_line(f"note: {note}")

    # ----- the σ schedule plot -----
    @on(OptionList.OptionHighlighted, "#scheduler")
    @on(Select.Changed, "#schedule")
    @on(Input.Changed, "#steps")
    def schedule_choice_changed(self) -> None:
        self.plot_schedule()

    def plot_schedule(self) -> None:
        """Ask for the highlighted sampler's σ schedule (its chosen type, and its own) once the model is loaded."""
        plots = self.query("#schedule-plot")
        if not plots or self.loaded_model is None or not self.panel.complete:
            return
        sampler, schedule = self.panel.scheduler_row, self.panel.schedule
        try:
            steps = int(self.query_one("#steps", Input).value)
        except ValueError:
            return plots.first().show_message("σ schedule: type a whole number of steps")
        if sampler is None or not 1 <= steps <= MAX_STEPS:
            return None
        self._schedule_key = (self.loaded_model, sampler, schedule, steps)
        self.compute_schedule(self._schedule_key)
        return None

    @work(thread=True, group="schedule", exclusive=True)
    def compute_schedule(self, key: tuple) -> None:
        model, sampler, schedule, steps = key
        scheduler = None if sampler == MODEL_DEFAULT else sampler
        try:
            chosen = self.engine.sigma_schedule(model, scheduler, schedule, steps)
            own = None if schedule == "Automatic" else self.engine.sigma_schedule(model, scheduler, "Automatic", steps)
        except Exception as error:  # noqa: BLE001 - the worker always reports back
            self.post_message(ScheduleComputed(key, None, None, describe_failure(error)[0]))
            return
        self.post_message(ScheduleComputed(key, (schedule, chosen), ("Automatic", own) if own else None))

    def on_schedule_computed(self, message: ScheduleComputed) -> None:
        plots = self.query("#schedule-plot")
        if not plots or message.key != self._schedule_key:
            return  # the choice moved on while this was worked out
        _, sampler, schedule, steps = message.key
        if message.failure:
            plots.first().show_message(f"σ schedule: {shown(message.failure, 200)}")
            return
        plots.first().show(shown(f"σ (log) by step: {sampler} · {schedule} · {steps} steps", 200), message.chosen,
                           message.own)

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        self.panel.show_load_failed()
        self.log_line(f"error: {message.message}")
        self.notify(message.message, title="Model not loaded", severity="error", timeout=10)

    @on(Select.Changed, "#model")
    def model_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.switch_model(event.value)

    def switch_model(self, model: str) -> None:
        """Make `model` the one runs use, loading it in the background."""
        if model != self.model:
            self.model = model
            self._start_loading(model)

    def apply_recipe(self, recipe, switch_model: bool = True) -> None:
        """Put a saved recipe into the controls, and switch to its model (its scheduler once loaded)."""
        fields = recipe.fields
        kept = self.panel.fill(fields)
        for note in recipe.notes:
            self.log_line(f"note: {note}")
        if kept:
            listed = ", ".join(f"{name} {shown(value, 40)}" for name, value in kept.items())
            self.log_line(f"note: kept from the recipe for the runs that follow (no field shows them): {listed}; "
                          "open another recipe, or restart, to drop them")
        if not all(is_clean(fields.get(name) or "") for name in ("prompt", "negative_prompt")):
            self.log_line("note: the recipe's prompt held control characters: they are shown, and used, escaped")
        # No scheduler in a recipe is the model's own (its first row), as the recipe's run used.
        model, scheduler = fields.get("model"), fields.get("scheduler") or MODEL_DEFAULT
        if switch_model and model and model != self.model:
            self._wanted_scheduler = scheduler
            self.panel.show_models(model, self.model_names)
            self.switch_model(model)
        elif scheduler:
            if self.loaded_model != self.model:
                self._wanted_scheduler = scheduler  # applied when the model has loaded
            elif not self.panel.select_scheduler(scheduler):
                self.log_line(f"note: {scheduler} is not available for this model: kept {self.panel.scheduler_row}")

    # ----- building a request from the fields -----
    def build_request(self) -> GenerationRequest | None:
        """A validated request from the fields and the settings, or None after marking the bad field."""
        try:
            return self.panel.build_request(self.settings.values, self.model)
        except RequestError as error:
            self._mark_invalid(error.field, str(error))
            return None

    def frame_rate(self) -> int | None:
        """The live frame cap from its field, or None after marking the field."""
        try:
            return self.panel.frame_rate(*settings_module.FRAME_RATE_RANGE)
        except RequestError as error:
            self._mark_invalid(error.field, str(error))
            return None

    # ----- generating -----
    def action_generate(self) -> None:
        request = self.build_request()
        fps = self.frame_rate()
        if request is None or fps is None:
            return
        syntax_note = prompt_syntax_note(request.prompt, request.negative_prompt, self.summary)
        if syntax_note:
            self.log_line(f"note: {syntax_note}")
            if "not applied" in syntax_note:
                self.notify(syntax_note, title="Prompt syntax", severity="warning", timeout=10)
        resized = init_image_note(request, self.summary)
        if resized:
            self.log_line(f"note: {resized}")
        unused = "; ".join(filter(None, (guidance_note(request, self.summary), sampler_note(request, self.summary))))
        if unused:
            self.log_line(f"note: {unused}")
            self.notify(unused, title="Not used", severity="warning", timeout=10)
        vocabulary_note = prompt_note(request.prompt, self.summary)
        if vocabulary_note:
            self.log_line(f"note: {vocabulary_note}")
            self.notify(vocabulary_note, title="Words the model does not know", severity="warning", timeout=10)
        if self.running:
            self._stop_run()
            self.log_line("cancelled the running generation to start the new one")
        self.run_id += 1
        self.running = True
        self.idle.clear()
        self.main_screen.remove_class("-choosing-sampler")  # the run's notes go to the log: show it
        self.result, self.frame_index, self.image_of_batch = None, None, None
        self.keeper.forget()
        self.main_screen.show_live_pane()
        self.main_screen.set_progress(f"starting: {request.scheduler or 'model default'}, "
                           f"{request.steps} steps, seed {request.seed}")
        # The event exists before the thread does: an escape pressed at once cancels this run.
        self._cancel_event = threading.Event()
        self._live = generation.live_preview(self.run_id, fps, self._pane_cells, self.colour_depth,
                                             request.preview_method, self.post_message)
        self.generate(request, self.run_id, fps, self._cancel_event, self._pane_cells, self._live)
        self.query_one(LivePane).focus()  # watch here; scrub with [ ] after; ctrl+e back to the prompt

    def action_compare(self) -> None:
        """Race the marked schedulers (along the study axes typed) on a screen of their own."""
        base = self.build_request()
        if base is None:
            return
        try:
            request = self.panel.build_comparison(base)
        except RequestError as error:
            self._mark_invalid(error.field, str(error))
            return
        except UserFacingError as error:
            self._mark_invalid("compare", str(error))
            return
        fps = self.frame_rate()
        if fps is None:
            return  # checked before anything is cancelled: a bad field leaves the running generation alone
        if self.running:
            self._stop_run()
            self.log_line("cancelled the running generation to start the comparison")
        self.log_line(f"comparing {len(request.lanes)} runs: {', '.join(lane.label for lane in request.lanes)}")
        from diffusers_tui.ui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(self.engine, request, self.outputs_dir, fps))

    @work(thread=True, exclusive=True, group="generate")
    def generate(self, request: GenerationRequest, run_id: int, fps: int, cancel: threading.Event,
                 cells: tuple[int, int], live=None) -> None:
        """The one generation worker (see ui.generation): it only posts messages."""
        generation.generate(self.engine, request, run_id, fps, cancel, cells, self.post_message, live,
                            self.colour_depth)

    @on(Select.Changed, "#preview-method")
    def preview_method_changed(self, event: Select.Changed) -> None:
        """A running generation's frames use the new method from the next one; so does scrubbing."""
        methods = self.summary.preview_methods if self.summary is not None else ()
        if event.value not in ("auto", *methods) and self.summary is not None and self.summary.mode != "unet":
            self.notify(f"{self.summary.name} has no {event.value} preview decoder: {self.summary.preview_note}",
                        title="Preview method", severity="warning", timeout=8)
            return
        if self.running and self._live is not None:
            self._live.method = event.value
        elif self.result is not None and self.frame_index is not None:
            self._show_frame(self.frame_index)

    def get_driver_class(self):
        """Textual's driver for this terminal; the Linux one with its output metered (ui.link)."""
        driver_class = super().get_driver_class()
        if driver_class.__name__ == "LinuxDriver":
            from diffusers_tui.ui.link import MeteredLinuxDriver

            if issubclass(MeteredLinuxDriver, driver_class):
                return MeteredLinuxDriver
        return driver_class

    def output_wait_s(self) -> float:
        """Seconds new output would wait for the terminal to take what is ahead of it (0: unknown or none)."""
        link = getattr(self._driver, "link", None)
        return link.wait_s() if link is not None else 0.0

    def output_rate(self) -> float | None:
        """Bytes a second the terminal takes, where a slow link has shown it (ui.link); else None."""
        link = getattr(self._driver, "link", None)
        return link.bytes_per_s() if link is not None else None

    def _install_output_filter(self) -> None:
        """Only the cells and colours that change go to the terminal (ui.terminal_output)."""
        # Textual has no public handle on its driver; its `write` is the one door all output goes
        # through, terminal and browser alike.
        driver = self._driver
        if driver is None or self.is_headless:
            return
        write = driver.write = terminal_output.install(driver.write)
        write.output.size = tuple(self.size)
        # After a resize or a suspension the terminal's cells are not what the filter last sent.
        self.app_resume_signal.subscribe(self, lambda _app: write.output.forget())
        self._output = write.output

    def on_resize(self, event) -> None:
        output = self._output
        if output is not None:
            output.size = (event.size.width, event.size.height)
            output.forget()

    def on_step_rendered(self, message: StepRendered) -> None:
        if message.run_id != self.run_id:
            return
        self.main_screen.show_step(message.snapshot, message.pixels)

    def on_run_finished(self, message: RunFinished) -> None:
        if message.run_id != self.run_id:
            return
        self.result = result = message.result
        self.running = False
        self.frame_index = None
        caption = generation.run_caption(result)
        if result.stopped:
            self.log_line(f"error: {result.stopped}")
            self.notify(result.stopped, title="Run stopped", severity="error", timeout=10)
        self.main_screen.show_result(result, message.pixels, caption)
        self.log_line(caption)
        self.idle.set()

    def on_run_failed(self, message: RunFailed) -> None:
        if message.run_id != self.run_id:
            return
        self.running = False
        if message.field:
            self._mark_invalid(message.field, message.message)
        else:
            self.log_line(f"error: {message.message}")
            self.notify(message.message, title="Generation failed", severity="error", timeout=10)
        self.main_screen.set_progress("failed: see the log")
        self.idle.set()

    def _stop_run(self) -> None:
        if self._cancel_event is not None:
            self._cancel_event.set()

    def action_cancel(self) -> None:
        if not self.running:
            return
        self._stop_run()
        self.log_line("cancelling...")

    async def action_quit(self) -> None:
        self._stop_run()  # the worker stops at its next step, so exit does not wait a whole run
        self.exit()

    @on(Button.Pressed, "#generate")
    def generate_pressed(self) -> None:
        self.action_generate()

    # ----- after a run: scrubbing, resizing -----
    def action_scrub(self, delta: int) -> None:
        if self.running or not self.frames:
            return
        last = len(self.frames)  # index len(frames) is the final image
        current = last if self.frame_index is None else self.frame_index
        self.frame_index = min(max(current + delta, 0), last)
        self._show_frame(self.frame_index)

    def _show_frame(self, index: int | None) -> None:
        if self.result is not None:
            self.main_screen.show_frame(self.result, index, self._pane_cells, self.image_of_batch)

    def action_batch_image(self) -> None:
        """A batch's images one at a time (its grid, image 1, image 2 ... the grid again), scrubbable alike."""
        if self.running or self.result is None or not self.result.batch:
            self.notify("no batch to look through: set a batch size or count and generate", severity="warning")
            return
        count = len(self.result.batch)
        now = self.image_of_batch
        self.image_of_batch = 0 if now is None else (None if now + 1 >= count else now + 1)
        shown_now = "the whole batch" if self.image_of_batch is None else f"image {self.image_of_batch + 1} of {count}"
        self.log_line(f"showing {shown_now} (ctrl+b for the next)")
        self._show_frame(self.frame_index)

    @property
    def main_screen(self) -> MainScreen:
        return next(screen for screen in self.screen_stack if isinstance(screen, MainScreen))

    # ----- what the user keeps (see ui.keeper) -----
    def action_save(self) -> None:
        if self.result is None:
            self.notify("nothing to save yet: generate first (ctrl+g)", severity="warning")
            return
        self.keeper.save(self.result, self.panel.save_steps())

    def on_saved(self, message: Saved) -> None:
        self.keeper.saved(message, self.result)

    def on_save_failed(self, message: SaveFailed) -> None:
        self.keeper.save_failed(message)

    def on_exported(self, message: Exported) -> None:
        self.keeper.exported(message)

    def action_export(self) -> None:
        """Export the run's previews as an animation and a contact sheet, next to its saved PNG."""
        if self.result is None or self.running:
            self.notify("nothing to export yet: generate first (ctrl+g)", severity="warning")
            return
        self.keeper.export(self.result)

    def action_use_as_init(self) -> None:
        """img2img: the current result becomes the next run's init image (saved first, so the recipe has its file)."""
        if self.result is None or self.result.image is None or self.running:
            self.notify("no finished result to start from yet: generate first (ctrl+g)", severity="warning")
            return
        # A batch: the image ctrl+b shows, or the first (its grid is not one picture to start from).
        chosen = self.result.batch[self.image_of_batch or 0] if self.result.batch else self.result
        self.keeper.use_as_init(chosen, is_current=chosen is self.result)

    def on_init_image_ready(self, message: InitImageReady) -> None:
        self.panel.query_one("#init-image", Input).value = str(message.path)
        self.log_line(f"the next run starts from {message.path} (img2img; blank the init image field for noise)")

    def action_history(self) -> None:
        self.keeper.open_history()

    def action_save_settings(self) -> None:
        """Write the current controls into the config file, as the defaults of the next start."""
        error = self.keeper.save_settings()
        if error is not None:
            self._mark_invalid(error.field, str(error))

    def action_save_to(self) -> None:
        """Ask for another outputs folder, then save what the current screen holds into it."""
        def chosen(folder: str | None) -> None:
            if folder is None:
                return
            self.outputs_dir = folder
            self.log_line(f"saving into {folder} from now on")
            if _is_compare_screen(self.screen):
                self.screen.outputs_dir = folder
                self.screen.action_save()
            else:
                self.action_save()

        from diffusers_tui.ui.screens.save_to import SaveToScreen

        self.push_screen(SaveToScreen(self.outputs_dir), chosen)

    # ----- small actions -----
    def action_scheduler(self, delta: int) -> None:
        name = self.panel.move_scheduler(delta)
        if name:
            self.log_line(f"scheduler: {name}")
        self.main_screen.add_class("-choosing-sampler")  # a narrow screen shows the σ plot until focus moves on

    def action_steps(self, delta: int) -> None:
        self.panel.change_steps(delta)

    def action_new_seed(self) -> None:
        self.panel.show_seed(random_seed())
        self.panel.lock_seed(True)  # a seed picked by hand is kept

    def action_lock_seed(self) -> None:
        self.panel.lock_seed(not self.panel.seed_locked)

    def action_toggle_preview(self) -> None:
        self.panel.toggle_preview()

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    def action_focus_pane(self) -> None:
        self.query_one(LivePane).focus()

    def action_help(self) -> None:
        from diffusers_tui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self._every_binding()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            action = binding.action
            yield SystemCommand(binding.description, binding.tooltip,
                                lambda action=action: self.run_action(action))

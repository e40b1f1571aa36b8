"""The settings sidebar: every input of a run, read as request values, filled from a recipe, marked when bad."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, OptionList, Select, TextArea
from textual.widgets.option_list import OptionDoesNotExist

from diffusers_tui.engine import (LIMITS, MODEL_DEFAULT, RequestError, SchedulerStatus, build_comparison, build_request,
                                  describe_range, describe_vocabulary, parse_number, parse_size, parse_whole,
                                  random_seed, schedule_names, scheduler_entries, shown)
from diffusers_tui.ui.widgets.lora_list import LoraPicker
from diffusers_tui.ui.widgets.sampler_list import fill_sampler_list, offer_schedules
from diffusers_tui.ui.widgets.settings_fields import (FIELD_WIDGETS, FORM_SETTINGS, PLAIN_DEFAULTS, PLAIN_FIELDS,
                                                      PREVIEW_METHOD_CHOICES, RECIPE_EXTRAS, fields_above_the_fold,
                                                      fields_below_the_fold, read_plain)

class SettingsPanel(VerticalScroll):
    """Every input of a run. Values are read by the app when it builds a request."""

    DEFAULT_CSS = """
    SettingsPanel { width: 46; padding: 0 1; border-right: vkey $primary-darken-2; }
    SettingsPanel Label { margin-top: 1; color: $text-muted; }
    SettingsPanel #prompt { height: 5; }
    SettingsPanel #scheduler { height: 9; }
    SettingsPanel Horizontal { height: auto; }
    SettingsPanel Horizontal Input { width: 1fr; }
    SettingsPanel Input.axis { padding: 0; }
    SettingsPanel #size, SettingsPanel #init-image { width: 2fr; }
    SettingsPanel #preview { width: 20; }
    SettingsPanel #preview-method { margin-top: 1; }
    SettingsPanel #schedule { margin-top: 0; }
    SettingsPanel Input.-bad-value, SettingsPanel TextArea.-bad-value { border: tall $error; }
    SettingsPanel #generate { width: 100%; margin-top: 1; }
    SettingsPanel #mode { color: $text-muted; }
    """

    def __init__(self, model: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model  # the model the app starts on; the list fills in once models are found

    def compose(self) -> ComposeResult:
        yield from fields_above_the_fold(self.model)

    def on_mount(self) -> None:
        #: (sampler, schedule type) pairs marked for a comparison, in marking order.
        self.marked: list[tuple[str, str]] = []
        self._offered_schedules: list[str] = list(schedule_names())
        # Every entry counts as available until the loaded model says more; asking the
        # registry now would import diffusers on the UI thread before the first frame.
        self._statuses: list = [SchedulerStatus(entry, True) for entry in scheduler_entries()]
        self._filter = ""
        #: The LoRA folders' files (engine NamedFile) and what to say when there are none, once listed.
        self._loras: tuple | None = None
        #: A recipe's fields that no input shows, kept for the runs that follow (see fill).
        self.recipe_extras: dict = {}
        #: Whether every field is mounted (see Completed).
        self.complete = False
        self.call_after_refresh(self._mount_fields_below_the_fold)

    class Completed(Message):
        """Every field is mounted: what reads or fills them (settings, a recipe, keys typed ahead) can go on.

        A third of the start-up's first frame went to styling the fields below the fold, which
        nobody sees before scrolling; they mount right after it (Textual's lazy mounting, with
        a message when done).
        """

    async def _mount_fields_below_the_fold(self) -> None:
        await self.mount_all(fields_below_the_fold())
        self.complete = True
        if self._loras is not None:
            self.query_one(LoraPicker).show(*self._loras)
        self.post_message(self.Completed())

    # ----- the model -----
    def show_models(self, model: str, names: list[str]) -> None:
        """Make the model selector list `model` (first, if it is not a listed one) and show it."""
        select = self.query_one("#model", Select)
        with self.prevent(Select.Changed):
            select.set_options([(Text(shown(name, 200)), name) for name in dict.fromkeys([model, *names])])
            select.value = model

    def show_loading(self, model: str) -> None:
        """The mode line counts the seconds until `model` has loaded."""
        started = time.perf_counter()
        mode_line = self.query_one("#mode", Label)

        def tick() -> None:
            mode_line.update(Text(f"mode: loading {shown(model, 200)}... {time.perf_counter() - started:.1f}s"))

        self._stop_loading_clock()
        self._loading_clock = self.set_interval(0.2, tick)
        tick()

    def show_loaded(self, summary, scheduler: str | None) -> None:
        """A loaded model's mode, size and schedulers; `scheduler` (else the model's own) is selected."""
        self._stop_loading_clock()
        self.set_schedulers(summary.statuses, scheduler or MODEL_DEFAULT)
        width, height = summary.native_size
        self.query_one("#mode", Label).update(f"mode: {summary.mode} · native size {width}x{height}")
        known = describe_vocabulary(summary)
        self.query_one("#prompt", TextArea).tooltip = f"what to draw: {known}" if known else "what to draw"
        # What guidance means on this model (Flux dev's is an input, not CFG), and the negative prompt's fate.
        kind = {"cfg": "guidance", "distilled": "guidance (distilled)", "none": "guidance (not used)"}[summary.guidance]
        self.query_one("#guidance-label", Label).update(f"Steps · {kind}")
        default = f"; this pipeline's default is {summary.guidance_default:g}" if summary.guidance_default else ""
        self.query_one("#guidance", Input).tooltip = f"{summary.guidance_meaning}{default}; {describe_range('guidance')}"
        self.query_one("#negative").tooltip = "what to steer away from" if summary.negative_prompt else "this model takes none"

    def show_load_failed(self) -> None:
        self._stop_loading_clock()
        self.query_one("#mode", Label).update("mode: - (model failed to load)")

    def _stop_loading_clock(self) -> None:
        if getattr(self, "_loading_clock", None) is not None:
            self._loading_clock.stop()
            self._loading_clock = None

    # ----- the schedulers -----
    def set_schedulers(self, statuses, selected: str | None) -> None:
        """Refill the scheduler list: unavailable entries greyed out with their reason."""
        self._statuses = list(statuses)
        available = {status.entry.name for status in statuses if status.available}
        self.marked = [(name, schedule) for name, schedule in self.marked if name in available]
        self._fill_schedulers()
        options = self.query_one("#scheduler", OptionList)
        if selected is not None:
            try:
                options.highlighted = options.get_option_index(selected)
            except OptionDoesNotExist:  # the model's own scheduler may not be in the registry
                pass
        if self.scheduler_row is not None:  # the same row highlighted again posts no event
            self._offer_schedules(self.scheduler_row)

    def _fill_schedulers(self, keep_highlighted: bool = True) -> None:
        """The list, grouped by tool, narrowed to the rows the filter matches (and the highlighted one,
        unless the filter itself changed)."""
        fill_sampler_list(self.query_one("#scheduler", OptionList), self._statuses, self.marked, self._filter,
                          self.scheduler_row if keep_highlighted else None, self.scheduler_row)

    def filter_schedulers(self, text: str) -> None:
        """Show the samplers whose name, tool or kind has every word of `text` (the highlighted one stays)."""
        self._filter = text
        self._fill_schedulers(keep_highlighted=False)
        if self.scheduler_row is None:
            self.move_scheduler(1)  # the first match takes the highlight

    def toggle_mark(self, name: str) -> None:
        """Mark sampler `name` on the chosen schedule type for the next comparison, or unmark it."""
        mark = (name, self.schedule)
        if mark in self.marked:
            self.marked.remove(mark)
        else:
            self.marked.append(mark)
        self._fill_schedulers()

    @property
    def schedule(self) -> str:
        return self.query_one("#schedule", Select).value

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "sampler-filter":
            self.filter_schedulers(event.value)

    def show_loras(self, loras: list, none_found: str) -> None:
        """The LoRA files to offer (engine NamedFile), or `none_found` saying why there are none."""
        self._loras = (list(loras), none_found)
        if self.complete:
            self.query_one(LoraPicker).show(*self._loras)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "scheduler" and event.option.id is not None:
            self._offer_schedules(event.option.id)

    def _entry(self, name: str):
        return next((status.entry for status in self._statuses if status.entry.name == name), None)

    def _offer_schedules(self, name: str) -> None:
        """The schedule types the highlighted sampler has, Automatic saying what it means for it."""
        entry = self._entry(name)
        self._offered_schedules = offer_schedules(self.query_one("#schedule", Select), entry, self)

    def select_schedule(self, schedule: str) -> bool:
        """Choose `schedule` if the highlighted sampler offers it; False otherwise."""
        if schedule not in self._offered_schedules:
            return False
        self.query_one("#schedule", Select).value = schedule
        return True

    @property
    def scheduler(self) -> str | None:
        """The highlighted sampler; None for the model default (the model's own scheduler)."""
        options = self.query_one("#scheduler", OptionList)
        if options.highlighted is None:
            return None
        name = options.get_option_at_index(options.highlighted).id
        return None if name == MODEL_DEFAULT else name

    @property
    def scheduler_row(self) -> str | None:
        """The highlighted row's name, the model default included."""
        options = self.query_one("#scheduler", OptionList)
        return None if options.highlighted is None else options.get_option_at_index(options.highlighted).id

    def select_scheduler(self, name: str) -> bool:
        """Highlight `name` if the list has it available; False otherwise."""
        options = self.query_one("#scheduler", OptionList)
        try:
            index = options.get_option_index(name)
        except OptionDoesNotExist:  # not a registry name
            return False
        if options.get_option_at_index(index).disabled:
            return False
        options.highlighted = index
        return True

    def move_scheduler(self, delta: int) -> str | None:
        """Highlight the next available scheduler up or down; returns its name."""
        options = self.query_one("#scheduler", OptionList)
        count = options.option_count
        index = options.highlighted if options.highlighted is not None else -delta
        for _ in range(count):
            index = (index + delta) % count
            if not options.get_option_at_index(index).disabled:
                options.highlighted = index
                return options.get_option_at_index(index).id
        return None

    # ----- the fields as request values -----
    def request_fields(self) -> dict:
        """The request fields these inputs hold (all but the seed); RequestError names a bad one."""
        width, height = parse_size(self._text("#size"))
        return {
            "prompt": self.query_one("#prompt", TextArea).text,
            "negative_prompt": self._text("#negative"),
            "scheduler": self.scheduler,
            "schedule": self.schedule,
            "steps": parse_whole("steps", self._text("#steps"), *_limits("steps")),
            "guidance": parse_number("guidance", self._text("#guidance")),
            "width": width,
            "height": height,
            "preview": self.query_one("#preview", Select).value,
            "preview_every": parse_whole("preview_every", self._text("#preview-every"), *_limits("preview_every")),
            "preview_method": self.preview_method,
            "loras": self.query_one(LoraPicker).pairs(),
            **{name: read_plain(name, kind, text) for selector, name, kind in PLAIN_FIELDS
               if (text := self._text(selector).strip())},
        }

    def build_request(self, settings: dict, model: str):
        """A request from these fields (they outrank the settings they show) and the other settings."""
        self.clear_marks()
        fields = self.request_fields()
        seed = self.locked_seed() if self.seed_locked else random_seed()
        unshown = {name: value for name, value in settings.items() if name not in FORM_SETTINGS}
        request = build_request(unshown, given={**self.recipe_extras, **fields, "model": model, "seed": seed})
        self.show_seed(request.seed)
        return request

    def build_comparison(self, base):
        """The marked schedulers at the typed step counts, along the typed study axes, on `base`; RequestError
        names a bad field."""
        axes = {place: self._text(f"#axis-{place}").strip() or None for place in "xyz"}
        if not self.marked and not any(axes.values()):
            raise RequestError("compare", "mark schedulers to compare first: highlight one in the list and "
                                          "press space (f6 then races them), or type a study axis")
        steps, reference, equal_calls = self.comparison_fields()
        seeds = parse_whole("seeds", self._text("#seeds"), 1, 64)
        # "Name Automatic" keeps a lane on its own default whatever the schedule field says now. Nothing marked:
        # the highlighted sampler runs in every lane.
        return build_comparison(base, [f"{name} {schedule}" for name, schedule in self.marked], steps, reference,
                                equal_calls, axes=axes, seeds=seeds)

    @property
    def seed_locked(self) -> bool:
        return self.query_one("#seed-lock", Checkbox).value

    def locked_seed(self) -> int:
        return parse_whole("seed", self._text("#seed"), *_limits("seed"))

    def lock_seed(self, locked: bool) -> None:
        self.query_one("#seed-lock", Checkbox).value = locked

    def change_steps(self, delta: int) -> None:
        """One step more or fewer, kept within the request's limits."""
        steps_input = self.query_one("#steps", Input)
        low, high = _limits("steps")
        try:
            steps = int(steps_input.value)
        except ValueError:
            steps = 20
        steps_input.value = str(min(max(steps + delta, low), high))

    def toggle_preview(self) -> None:
        """Preview the denoised estimate (x0) or the noisy sample."""
        preview = self.query_one("#preview", Select)
        preview.value = "noisy" if preview.value == "x0" else "x0"

    @property
    def preview_method(self) -> str:
        return self.query_one("#preview-method", Select).value

    def show_seed(self, seed: int) -> None:
        """Show the seed a run used (the field is where a user reads it and locks it)."""
        self.query_one("#seed", Input).value = str(seed)

    def comparison_fields(self) -> tuple[str, str | None, bool]:
        """(step counts, reference run, equal calls) as typed."""
        return (self._text("#compare-steps"), self._text("#reference").strip() or None,
                self.query_one("#equal-calls", Checkbox).value)

    def frame_rate(self, low: int, high: int) -> int:
        """The live frame cap; RequestError("fps") outside low..high."""
        text = self._text("#fps")
        try:
            fps = int(text.strip())
        except ValueError:
            raise RequestError("fps", f"{text!r} is not a whole number ({low} to {high})") from None
        if not low <= fps <= high:
            raise RequestError("fps", f"{fps} frames per second is outside {low} to {high}")
        return fps

    def save_steps(self) -> bool:
        return self.query_one("#save-steps", Checkbox).value

    def _text(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    # ----- filling the fields -----
    def apply_settings(self, settings) -> None:
        """Start the fields from the effective settings (see diffusers_tui.settings)."""
        for selector, name in (("#steps", "steps"), ("#guidance", "guidance"), ("#size", "size"),
                               ("#preview-every", "preview_every"), ("#fps", "fps"), ("#compare-steps", "steps")):
            self.query_one(selector, Input).value = str(settings[name])
        self.query_one("#preview", Select).value = settings["preview"]
        self.select_schedule(settings["schedule"])
        method = {"linear": "latent"}.get(settings["preview_method"], settings["preview_method"])
        if method in dict((value, label) for label, value in PREVIEW_METHOD_CHOICES):
            self.query_one("#preview-method", Select).value = method

    def fill(self, fields: dict) -> dict:
        """Put a recipe's fields into the inputs: prompt, steps, guidance, seed (locked), size, LoRAs. Those it
        has no input for (eta, a variation seed...) are kept for the runs that follow (recipe_extras), and
        returned, so the app can say so."""
        self.recipe_extras = {name: fields[name] for name in RECIPE_EXTRAS if fields.get(name) is not None}
        # Control characters in a recipe's text are shown escaped: they would drive the terminal.
        if "prompt" in fields:
            self.query_one("#prompt", TextArea).text = shown(fields["prompt"], None, multiline=True)
        if "negative_prompt" in fields:
            self.query_one("#negative", Input).value = shown(fields["negative_prompt"] or "", None)
        for selector, name in (("#steps", "steps"), ("#guidance", "guidance"), ("#seed", "seed"),
                               *((selector, name) for selector, name, _ in PLAIN_FIELDS)):
            if name in fields:
                self.query_one(selector, Input).value = "" if fields[name] is None else shown(str(fields[name]), None)
            elif selector in PLAIN_DEFAULTS:  # another tool's recipe: no init image, one image, no hires fix
                self.query_one(selector, Input).value = PLAIN_DEFAULTS[selector]
        if fields.get("schedule"):
            self.select_schedule(fields["schedule"])
        if "seed" in fields:
            self.query_one("#seed-lock", Checkbox).value = True  # a recipe's seed is the point of it
        if "loras" in fields:
            self.query_one(LoraPicker).text = ", ".join(
                f"{shown(name, None)}:{weight:g}" for name, weight in fields["loras"] or ())
        if "width" in fields or "height" in fields:
            width, height = fields.get("width"), fields.get("height")
            self.query_one("#size", Input).value = f"{width}x{height}" if width and height else ""
        return self.recipe_extras

    def setting_values(self) -> dict:
        """What F9 keeps as the next start's defaults; RequestError names a bad field."""
        return {"scheduler": self.scheduler, "schedule": self.schedule, "size": self._text("#size"),
                "preview": self.query_one("#preview", Select).value, "preview_method": self.preview_method,
                "steps": parse_whole("steps", self._text("#steps"), *_limits("steps")),
                "guidance": parse_number("guidance", self._text("#guidance")),
                "preview_every": parse_whole("preview_every", self._text("#preview-every"), *_limits("preview_every")),
                "fps": parse_whole("fps", self._text("#fps"), 1, None)}

    # ----- marking -----
    def clear_marks(self) -> None:
        for widget in self.query(".-bad-value"):
            widget.remove_class("-bad-value")

    def mark_invalid(self, field: str) -> None:
        selector = FIELD_WIDGETS.get(field)
        if selector:
            self.query_one(selector).add_class("-bad-value")


def _limits(name: str) -> tuple[int, int]:
    low, high = LIMITS[name]
    return int(low), int(high)

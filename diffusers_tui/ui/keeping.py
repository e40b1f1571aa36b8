"""What the user keeps: settings applied at start and saved (F9), history and recipes (F7, --from), export (F8).

A mixin of the App: these actions read and fill the same controls as a run does.
"""

from __future__ import annotations

from textual import work
from textual.widgets import Checkbox, Input, Select, TextArea

from diffusers_tui import settings as settings_module
from diffusers_tui.engine.errors import RequestError, UserFacingError
from diffusers_tui.ui.form import describe_failure, parse_float, parse_int
from diffusers_tui.ui.messages import Exported, Saved, SaveFailed
from diffusers_tui.ui.widgets.history_screen import HistoryScreen
from diffusers_tui.ui.widgets.settings_panel import SettingsPanel


class KeepingActions:
    """Settings, history, recipes and export for DiffusersTuiApp."""

    def _apply_settings(self) -> None:
        """Start the fields, the key map and the messages from the effective settings."""
        settings = self.settings
        for selector, name in (("#steps", "steps"), ("#guidance", "guidance"), ("#size", "size"),
                               ("#preview-every", "preview_every"), ("#fps", "fps"), ("#compare-steps", "steps")):
            self.query_one(selector, Input).value = str(settings[name])
        self.query_one("#preview", Select).value = settings["preview"]
        known = {binding.id for binding in self._every_binding() if binding.id}
        keys = {name: value for name, value in settings["keys"].items() if name in known}
        if keys:
            self.set_keymap(keys)
        unknown = sorted(set(settings["keys"]) - known)
        warnings = list(settings.warnings)
        if unknown:
            warnings.append(f"{settings.path}: [keys] names no binding {', '.join(unknown)} "
                            "(F1 lists the keys; the command palette, ctrl+p, names every action)")
        for warning in warnings:
            self.log_line(f"warning: {warning}")
            self.notify(warning, title="Settings", severity="warning", timeout=12)

    def action_history(self) -> None:
        def chosen(entry) -> None:
            if entry is None:
                return
            from diffusers_tui.engine.history import recipe_from_png

            try:
                recipe = recipe_from_png(entry.recipe_path)
            except UserFacingError as error:
                self.log_line(f"error: {error}")
                self.notify(str(error), title="No recipe", severity="error")
                return
            self.apply_recipe(recipe.fields, recipe.notes)
            self.log_line(f"loaded the recipe of {entry.recipe_path.name}")

        self.push_screen(HistoryScreen(self.outputs_dir), chosen)

    def apply_recipe(self, fields: dict, notes=(), switch_model: bool = True) -> None:
        """Put a saved recipe into the controls: prompt, steps, guidance, seed (locked), size, scheduler, model."""
        if "prompt" in fields:
            self.query_one("#prompt", TextArea).text = fields["prompt"]
        if "negative_prompt" in fields:
            self.query_one("#negative", Input).value = fields["negative_prompt"] or ""
        for selector, name in (("#steps", "steps"), ("#guidance", "guidance"), ("#seed", "seed")):
            if name in fields:
                self.query_one(selector, Input).value = str(fields[name])
        if "seed" in fields:
            self.query_one("#seed-lock", Checkbox).value = True  # a recipe's seed is the point of it
        if "width" in fields or "height" in fields:
            width, height = fields.get("width"), fields.get("height")
            self.query_one("#size", Input).value = f"{width}x{height}" if width and height else ""
        for note in notes:
            self.log_line(f"note: {note}")
        model = fields.get("model")
        scheduler = fields.get("scheduler")
        if switch_model and model and model != self.model:
            self._wanted_scheduler = scheduler
            self._show_model(model)
            self.switch_model(model)
        elif scheduler:
            if self.loaded_model != self.model:
                self._wanted_scheduler = scheduler  # applied when the model has loaded
            elif not self.query_one(SettingsPanel).select_scheduler(scheduler):
                self.log_line(f"note: {scheduler} is not available for this model: kept {self.query_one(SettingsPanel).scheduler}")

    def action_export(self) -> None:
        """Export the run's previews as an animation and a contact sheet, next to its saved PNG."""
        if self.result is None or self.running:
            self.notify("nothing to export yet: generate first (ctrl+g)", severity="warning")
            return
        self.export(self.result, list(self.frames), self.saved_path)

    @work(thread=True, group="save")
    def export(self, result, frames, saved_path) -> None:
        from diffusers_tui.engine import export, outputs

        try:
            if saved_path is None:
                saved_path = outputs.save_result(result, self.outputs_dir)
                self.post_message(Saved(saved_path, 0, result))
            done = export.export_denoising(frames, result.image, saved_path.with_suffix(""))
            self.post_message(Exported(done))
        except Exception as error:
            self.post_message(SaveFailed(describe_failure(error)[0]))

    def on_exported(self, message: Exported) -> None:
        done = message.exported
        text = f"exported {done.frames} frames: {done.animation} and {done.contact_sheet.name}"
        self.log_line(text)
        self.notify(text, title="Exported")

    def action_save_settings(self) -> None:
        """Write the current controls into the config file, as the defaults of the next start."""
        panel = self.query_one(SettingsPanel)
        values = {"model": self.model, "scheduler": panel.scheduler, "size": self.query_one("#size", Input).value,
                  "outputs": self.outputs_dir, "preview": self.query_one("#preview", Select).value}
        try:
            for selector, name, read in (("#steps", "steps", parse_int), ("#guidance", "guidance", parse_float),
                                         ("#preview-every", "preview_every", parse_int), ("#fps", "fps", parse_int)):
                values[name] = read(name, self.query_one(selector, Input).value, "see the field's tooltip")
            path = settings_module.save(values, self.settings.path)
        except RequestError as error:
            self._mark_invalid(error.field, str(error))
            return
        except OSError as error:
            self.notify(f"could not write {self.settings.path}: {error.strerror or error}", severity="error")
            return
        self.log_line(f"settings saved in {path}")
        self.notify(f"saved in {path}; the next start uses them", title="Settings saved")

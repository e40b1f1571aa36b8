"""What the user keeps from the main screen: saving a run, exporting it, history (F7), and settings (F9).

A controller, not a mixin: it holds what it owns (where the current run was saved) and
reaches the app only through `KeeperHost`, the few things it needs. Saving and export
run in thread workers that only post messages (ui.messages); the app routes them back
here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

from diffusers_tui import settings as settings_module
from diffusers_tui.engine import Engine, GenerationResult, RequestError, UserFacingError
from diffusers_tui.ui.bindings import unknown_keys
from diffusers_tui.ui.failures import describe_failure
from diffusers_tui.ui.messages import Exported, InitImageReady, Saved, SaveFailed
from diffusers_tui.ui.widgets.settings_panel import SettingsPanel


class KeeperHost(Protocol):
    """What the Keeper uses of the app."""

    engine: Engine
    settings: settings_module.Settings
    #: The folder saves go into (ctrl+o changes it).
    outputs_dir: str
    #: The model runs use now.
    model: str

    def log_line(self, text: str) -> None: ...
    def notify(self, message: str, *, title: str = "", severity: str = "information", timeout: float | None = None
               ) -> None: ...
    def push_screen(self, screen: Any, callback: Callable[[Any], None] | None = None) -> Any: ...
    def run_worker(self, work: Callable[[], None], *, thread: bool, group: str) -> Any: ...
    def post_message(self, message: Any) -> bool: ...
    def apply_recipe(self, recipe: Any) -> None: ...


class Keeper:
    """Save, export, history and settings for one app."""

    def __init__(self, host: KeeperHost, panel: Callable[[], SettingsPanel]) -> None:
        self.host = host
        self._panel = panel
        #: Where the current result was saved, so export writes next to it (None: not saved yet).
        self.saved_path: Path | None = None

    def forget(self) -> None:
        """A new run started: nothing of it is saved yet."""
        self.saved_path = None

    # ----- saving -----
    def save(self, result: GenerationResult, with_steps: bool) -> None:
        engine, folder = self.host.engine, self.host.outputs_dir

        def work() -> None:
            try:
                path = engine.save(result, folder, with_steps)
                self.host.post_message(Saved(path, len(result.frames) if with_steps else 0, result))
            except Exception as error:  # noqa: BLE001 - the worker always reports back
                self.host.post_message(SaveFailed(describe_failure(error)[0]))

        self.host.run_worker(work, thread=True, group="save")

    def saved(self, message: Saved, current: GenerationResult | None) -> None:
        if message.result is not None and message.result is current:
            self.saved_path = message.path
        extra = f" and {message.steps} steps" if message.steps else ""
        self.host.log_line(f"saved {message.path}{extra}")
        self.host.notify(f"saved {message.path}{extra}", title="Saved")

    def save_failed(self, message: SaveFailed) -> None:
        text = f"{message.message}. It is kept in memory: press ctrl+o to save it into another folder"
        self.host.log_line(f"error: {text}")
        self.host.notify(text, title="Not saved", severity="error", timeout=15)

    # ----- export -----
    def export(self, result: GenerationResult) -> None:
        """The run's frames as an animation and a contact sheet, next to its saved PNG (saved first)."""
        engine = self.host.engine
        self._after_saving(result, self.saved_path,
                           lambda path: Exported(engine.export(result, path.with_suffix(""))))

    def use_as_init(self, result: GenerationResult, is_current: bool = True) -> None:
        """ctrl+t: the result, saved first where it is not yet, becomes the next run's init image (`is_current`
        False: one image of the current batch, which is saved on its own)."""
        self._after_saving(result, self.saved_path if is_current else None, InitImageReady)

    def _after_saving(self, result: GenerationResult, saved_path: Path | None, then) -> None:
        """In a worker: save `result` where `saved_path` is None, then post `then(path)`'s message."""
        engine, folder = self.host.engine, self.host.outputs_dir

        def work() -> None:
            try:
                path = saved_path
                if path is None:
                    path = engine.save(result, folder)
                    self.host.post_message(Saved(path, 0, result))
                self.host.post_message(then(path))
            except Exception as error:  # noqa: BLE001 - the worker always reports back
                self.host.post_message(SaveFailed(describe_failure(error)[0]))

        self.host.run_worker(work, thread=True, group="save")

    def exported(self, message: Exported) -> None:
        done = message.exported
        text = f"exported {done.frames} frames: {done.animation} and {done.contact_sheet.name}"
        self.host.log_line(text)
        self.host.notify(text, title="Exported")

    # ----- history -----
    def open_history(self) -> None:
        """F7: the history screen; the entry chosen there has its recipe loaded into the controls."""
        def chosen(entry) -> None:
            if entry is None:
                return
            try:
                recipe = self.host.engine.read_recipe(entry.recipe_path)
            except UserFacingError as error:
                self.host.log_line(f"error: {error}")
                self.host.notify(str(error), title="No recipe", severity="error")
                return
            self.host.apply_recipe(recipe)
            self.host.log_line(f"loaded the recipe of {entry.recipe_path.name}")

        from diffusers_tui.ui.screens.history import HistoryScreen  # loaded when first opened

        self.host.push_screen(HistoryScreen(self.host.engine, self.host.outputs_dir), chosen)

    # ----- settings -----
    def warn_about_settings(self, known_bindings: set[str]) -> dict[str, str]:
        """The key map the settings ask for (known binding ids only); every problem logged and notified."""
        settings = self.host.settings
        keys = {name: value for name, value in settings["keys"].items() if name in known_bindings}
        unknown = sorted(set(settings["keys"]) - known_bindings)
        warnings = list(settings.warnings)
        if unknown:
            warnings.append(f"{settings.path}: [keys] names no binding {', '.join(unknown)} "
                            "(F1 lists the keys; the command palette, ctrl+p, names every action)")
        for binding_id, value in list(keys.items()):
            bad = unknown_keys(value)
            if bad:
                good = [key.strip() for key in value.split(",") if key.strip() not in bad]
                warnings.append(f"{settings.path}: [keys] {binding_id} = {value!r}: "
                                f"{', '.join(bad)} is not a key name (keys look like ctrl+g, f10, "
                                f"enter, shift+tab); " + (f"using {', '.join(good)}" if good else "its default kept"))
                if good:
                    keys[binding_id] = ",".join(good)
                else:
                    del keys[binding_id]
        for warning in warnings:  # log_line and notify escape what came from the file
            self.host.log_line(f"warning: {warning}")
            self.host.notify(warning, title="Settings", severity="warning", timeout=12)
        return keys

    def save_settings(self) -> RequestError | None:
        """F9: the current controls become the next start's defaults; the bad field's error, if one is bad."""
        panel, settings = self._panel(), self.host.settings
        try:
            values = {"model": self.host.model, "outputs": self.host.outputs_dir, **panel.setting_values()}
            path = settings_module.save(values, settings.path)
        except RequestError as error:
            return error
        except OSError as error:
            self.host.notify(f"could not write {settings.path}: {error.strerror or error}", severity="error")
            return None
        self.host.log_line(f"settings saved in {path}")
        self.host.notify(f"saved in {path}; the next start uses them", title="Settings saved")
        return None

"""The Engine: loads one model at a time and runs requests on it, one run at a time."""

from __future__ import annotations

import threading

from diffusers_tui.engine.request import GenerationRequest, GenerationResult
from diffusers_tui.engine.sources import LoadOptions


class Engine:
    """The engine's front door for the CLI and the app; safe to call from worker threads."""

    def __init__(self, options: LoadOptions | None = None, model_folders: tuple[str, ...] = (),
                 threads: int | None = None):
        self.options = options or LoadOptions()
        self.model_folders = model_folders
        self.threads = threads
        # Held for a whole run: two runs never share one pipeline (its scheduler is swapped).
        self._run_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._loaded = None
        self._loaded_name: str | None = None

    def load(self, model: str):
        """The LoadedModel for `model`, loading it (and dropping the previous one) if needed."""
        from diffusers_tui.engine import configure_threads, sources

        with self._load_lock:
            if self._loaded is not None and self._loaded_name == model:
                return self._loaded
            configure_threads(self.threads)
            source = sources.resolve(model)
            self._loaded, self._loaded_name = None, None  # free the old model before loading
            loaded = sources.load(source, self.options)
            self._loaded, self._loaded_name = loaded, model
            return loaded

    def run(self, request: GenerationRequest, on_step=None, cancel: threading.Event | None = None
            ) -> GenerationResult:
        from diffusers_tui.engine import runner

        with self._run_lock:
            loaded = self.load(request.model)
            return runner.run(loaded, request, on_step, cancel)

    def compare(self, request, on_lane_step=None, cancel: threading.Event | None = None):
        """Race a ComparisonRequest's lanes on its model (see engine.lockstep)."""
        from diffusers_tui.engine import lockstep

        with self._run_lock:
            loaded = self.load(request.base.model)
            return lockstep.compare(loaded, request, on_lane_step, cancel)

    def scheduler_statuses(self, model: str | None = None):
        """Registry entries marked available or not, for `model` or for this machine alone."""
        from diffusers_tui.engine import schedulers

        if model is None:
            return schedulers.statuses(None, None)
        loaded = self.load(model)
        return schedulers.statuses(loaded.original_scheduler_config,
                                   schedulers.compatible_names(loaded.scheduler))

    def models(self):
        from diffusers_tui.engine import sources

        return sources.list_models(self.model_folders)

"""The Engine: loads one model at a time and runs requests on it, one run at a time."""

from __future__ import annotations

import gc
import sys
import threading

from diffusers_tui.engine.errors import OutOfMemory, RunError, UserFacingError
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
            progress = _Progress()

            def watched(snapshot) -> None:
                progress.seen(snapshot)
                if on_step is not None:
                    on_step(snapshot)

            return _reporting_failures(lambda: runner.run(loaded, request, watched, cancel), progress, loaded)

    def compare(self, request, on_lane_step=None, cancel: threading.Event | None = None):
        """Race a ComparisonRequest's lanes on its model (see engine.lockstep)."""
        from diffusers_tui.engine import lockstep

        with self._run_lock:
            loaded = self.load(request.base.model)
            progress = _Progress()

            def watched(index, snapshot) -> None:
                progress.seen(snapshot)
                if on_lane_step is not None:
                    on_lane_step(index, snapshot)

            return _reporting_failures(lambda: lockstep.compare(loaded, request, watched, cancel), progress, loaded)

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


class _Progress:
    """The last model call a run reported, so a failure can say where it happened."""

    def __init__(self) -> None:
        self.step, self.total = 0, 0

    def seen(self, snapshot) -> None:
        self.step, self.total = snapshot.step, snapshot.total

    def where(self) -> str:
        if not self.total:
            return "before the first model call finished"
        if self.step < self.total:
            return f"at model call {self.step + 1} of {self.total}"
        return "after the last model call (decoding the image)"


def _reporting_failures(run, progress: _Progress, loaded):
    """Call `run`; turn whatever it raises into a UserFacingError, freeing memory after OOM."""
    failure = None
    try:
        return run()
    except UserFacingError:
        raise
    except Exception as error:  # noqa: BLE001 - every failure reaches the user as one message
        failure = _explain(error, progress, loaded)
    # Raised outside the except block, so the failing frames (and their tensors) are not
    # kept alive as the new error's context, and the collector can free them.
    free_memory()
    raise failure


def is_out_of_memory(error: BaseException) -> bool:
    if type(error).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA), no torch import
        return True
    text = str(error)
    # CPU allocations that fail raise a plain RuntimeError; MPS has its own wording.
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def _explain(error: Exception, progress: _Progress, loaded) -> UserFacingError:
    where = progress.where()
    if is_out_of_memory(error):
        if getattr(loaded.device, "type", "cpu") == "cuda":
            advice = "try a smaller size, fewer runs compared at once, or start with --offload model " \
                     "(--offload sequential uses the least GPU memory)"
        else:
            advice = "try a smaller size or fewer runs compared at once"
        return OutOfMemory(f"out of memory {where}; what the run held was freed: {advice}")
    text = str(error).splitlines()[0] if str(error) else ""
    return RunError(f"the run failed {where}: {type(error).__name__}: {text}".rstrip(": "))


def free_memory() -> None:
    """Collect what a failed run left behind and hand cached GPU memory back."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()

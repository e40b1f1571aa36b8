"""The Engine: the one door the app and the commands use, to load, run, compare, save and read back.

It loads one model at a time and runs one request at a time on it (with the request's LoRAs). What it
hands out (summaries, results, snapshots, history entries, recipes) is plain frozen values: the app and
the commands never hold a torch or diffusers object.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
import threading
from pathlib import Path

from diffusers_tui.engine import vocabulary
from diffusers_tui.engine.errors import OutOfMemory, RunError, UserFacingError
from diffusers_tui.engine.models.loading import LoadOptions
from diffusers_tui.engine.request import GenerationRequest, GenerationResult, ModelSummary


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

    def with_device(self, device: str) -> "Engine":
        """A new Engine like this one on another device (one GPU per process, say)."""
        return Engine(dataclasses.replace(self.options, device=device), self.model_folders, self.threads)

    def load(self, model: str) -> ModelSummary:
        """Load `model` (dropping the previous one) unless it is loaded; what it is, as plain values."""
        from diffusers_tui.engine.sampling import prompt_weighting, registry

        loaded = self.loaded_model(model)
        own = registry.entry_for_scheduler(loaded.scheduler)
        return ModelSummary(
            name=model, mode=loaded.mode, native_size=loaded.native_size, size_multiple=loaded.size_multiple,
            scheduler_class=type(loaded.scheduler).__name__, default_scheduler=own[0].name if own else None,
            statuses=tuple(self._statuses(loaded)), notes=tuple(loaded.notes),
            preview_methods=loaded.decoders.methods, preview_auto=loaded.decoders.auto,
            preview_note=loaded.decoders.fetch_note(), **vocabulary.of_model(loaded),
            prompt_weighting=prompt_weighting.weighting_kind(loaded.pipeline) if loaded.pipeline is not None else None,
            **_guidance(loaded))

    def loaded_model(self, model: str):
        """The engine's own LoadedModel for `model` (loading it if needed).

        For the engine, its tests and benchmarks only: it holds the live pipeline. The app
        and the commands use `load`, which hands out a ModelSummary.
        """
        from diffusers_tui.engine.models import loading, names
        from diffusers_tui.engine.runtime import configure_threads

        with self._load_lock:
            if self._loaded is not None and self._loaded_name == model:
                return self._loaded
            configure_threads(self.threads)
            source = names.resolve(model)
            self._loaded, self._loaded_name = None, None  # free the old model before loading
            loaded = loading.load(source, self.options)
            self._loaded, self._loaded_name = loaded, model
            return loaded

    def run(self, request: GenerationRequest, on_step=None, cancel: threading.Event | None = None,
            live=None) -> GenerationResult:
        """Run `request`, calling `on_step(StepSnapshot)` from this thread after every model call.

        Each recorded step is also offered to `live` (a LivePreview), whose own thread decodes the newest at
        its frame cap. The result owns every recorded step (`frames`)."""
        from diffusers_tui.engine.models import dressing
        from diffusers_tui.engine.preview import finite_frames, with_last_preview
        from diffusers_tui.engine.sampling import runner

        with self._run_lock:
            loaded = self.loaded_model(request.model)
            applied = dressing.dress(loaded, request, self.options)
            progress = _Progress()
            frames = []

            def watched(snapshot) -> None:
                progress.seen(snapshot)
                if snapshot.latents is not None:
                    frames.append(snapshot)
                    if live is not None:
                        live.offer(snapshot)
                if on_step is not None:
                    on_step(snapshot)

            if live is not None:
                loaded.decoders.resolve(live.method or request.preview_method)  # a bad method fails now
                live.start(request.preview_method, on_cpu=loaded.device.type == "cpu")
            try:
                result = _reporting_failures(lambda: runner.run(loaded, request, watched, cancel), progress, loaded)
            finally:
                if live is not None:
                    live.finish()  # what is still waiting is dropped: the result's own picture replaces it
            kept = finite_frames(frames) if result.stopped else frames
            method = live.method if live is not None and live.method else request.preview_method
            result = dressing.recorded(result, applied)
            return dataclasses.replace(with_last_preview(result, kept, method), frames=tuple(kept))

    @staticmethod
    def preview(snapshot, method: str | None = None):
        """The picture of a recorded step by `method` (None: auto), decoded on first asking, then cached."""
        record = snapshot.latents
        return record.decoders.image(record, snapshot.preview_kind, method)

    @staticmethod
    def full_image(snapshot):
        """A recorded step at full resolution (a full decode): what snapshots and exports save."""
        from diffusers_tui.engine.preview import full_picture

        return full_picture(snapshot)

    def compare(self, request, on_lane_step=None, cancel: threading.Event | None = None, live=None):
        """Race a ComparisonRequest's lanes on its model (see engine.sampling.lockstep).

        Recorded steps are offered to `live` by lane; the lanes share its frame cap.
        """
        from diffusers_tui.engine.models import dressing
        from diffusers_tui.engine.sampling import lockstep

        with self._run_lock:
            loaded = self.loaded_model(request.base.model)
            progress = _Progress()

            def watched(index, snapshot) -> None:
                progress.seen(snapshot)
                if live is not None and snapshot.latents is not None:
                    live.offer(snapshot, index)
                if on_lane_step is not None:
                    on_lane_step(index, snapshot)

            if live is not None:
                live.start(request.base.preview_method, on_cpu=loaded.device.type == "cpu")
            try:
                result = _reporting_failures(lambda: lockstep.compare(loaded, request, watched, cancel, lambda lane: (
                    dressing.dress(loaded, lane, self.options))), progress, loaded)
            finally:
                if live is not None:
                    live.finish()
            return self._with_schedules(result)

    def _with_schedules(self, result):
        """Each lane (and reference) with the σ schedule its sampler steps through, for the schedule figure."""
        import dataclasses

        known: dict[tuple, tuple] = {}

        def schedule_of(lane):
            request = lane.result.request
            key = (request.model, request.scheduler, request.schedule, request.steps, request.shift)
            if key not in known:
                try:
                    known[key] = tuple(self.sigma_schedule(request.model, request.scheduler, request.schedule,
                                                           request.steps, request.shift))
                except Exception:  # noqa: BLE001 - a figure's data; the run itself stands without it
                    known[key] = ()
            return dataclasses.replace(lane, sigmas=known[key])

        return dataclasses.replace(result, lanes=tuple(map(schedule_of, result.lanes)),
                                   references=tuple(map(schedule_of, result.references)))

    @staticmethod
    def launched_distributed() -> bool:
        """True under `accelerate launch` with more than one process."""
        from diffusers_tui.engine.sampling.distributed import launched_distributed

        return launched_distributed()

    def compare_across_processes(self, request, pick_device: bool = True):
        """This process's share of a comparison; the whole ComparisonResult on the main process, else None."""
        from diffusers_tui.engine.sampling.distributed import compare_across_processes

        return compare_across_processes(self, request, pick_device)

    def sigma_schedule(self, model: str, scheduler: str | None, schedule: str = "Automatic",
                       steps: int = 20, shift: float | None = None) -> list[float]:
        """The noise levels (σ) a run of `scheduler` on `schedule` at `steps` would step through on `model`, first
        to last, without running it: what a schedule plot draws. A flow model's σ run from 1 (or its shifted
        start, on `shift` where given) to 0; a sampler with its own schedule (A1111's DDIM) gives that one."""
        from diffusers_tui.engine.sampling import preflight, registry

        loaded = self.loaded_model(model)
        made = preflight.make_scheduler(loaded, scheduler, schedule)
        made = made if shift is None else preflight.with_shift(loaded, made, shift)
        registry.set_trial_timesteps(made, steps)
        return registry.sigmas_of(made)

    def scheduler_statuses(self, model: str | None = None):
        """Registry entries marked available or not, for `model` or for this machine alone."""
        from diffusers_tui.engine.sampling import registry

        if model is None:
            return registry.statuses(None, None)
        return self._statuses(self.loaded_model(model))

    @staticmethod
    def _statuses(loaded):
        """The registry marked for `loaded`, worked out once per loaded model.

        Trying every entry costs about 1.3 s on the demo (each DPM2 entry builds in 0.3 s),
        and neither the model's config nor this machine's packages change while it stays loaded.
        """
        from diffusers_tui.engine.models import families
        from diffusers_tui.engine.sampling import registry

        if loaded.statuses is None:
            loaded.statuses = (registry.model_default_status(loaded.scheduler),
                               *registry.statuses(loaded.original_scheduler_config,
                                                  registry.compatible_names(loaded.scheduler),
                                                  registry.is_flow_scheduler(loaded.scheduler),
                                                  loaded.pipeline is not None
                                                  and families.sets_sigmas(loaded.pipeline)))
        return list(loaded.statuses)

    def models(self):
        """Every model on this machine (ModelInfo): the demos, the local HF cache, the model folders."""
        from diffusers_tui.engine.models import catalog

        return catalog.list_models(self.model_folders)

    # ----- what the user keeps -----
    @staticmethod
    def save(result: GenerationResult, outputs_dir: str | os.PathLike, with_steps: bool = False) -> Path:
        """Save a run's image with its recipe (and its frames, with_steps) into a new numbered file (a batch: each
        image with its own seed and recipe, then the grid, whose path is returned)."""
        from diffusers_tui.engine.files import outputs

        for item in result.batch:
            outputs.save_result(item, outputs_dir)
        return outputs.save_result(result, outputs_dir, list(result.frames) if with_steps else None)

    @staticmethod
    def save_comparison(result, outputs_dir: str | os.PathLike) -> Path:
        """Save a comparison's grid, images and table into a new folder; returns the folder."""
        from diffusers_tui.engine.files import compare_outputs

        return compare_outputs.save_comparison(result, outputs_dir)

    @staticmethod
    def read_study(folder: str | os.PathLike):
        """A saved comparison's table and figures' data, read back (SavedStudy); UserFacingError if unreadable."""
        from diffusers_tui.engine.files import saved_study

        return saved_study.read_study(folder)

    @staticmethod
    def export(result: GenerationResult, folder: str | os.PathLike):
        """Write the run's frames as an animation and a contact sheet into `folder` (Exported)."""
        from diffusers_tui.engine.files import export

        return export.export_denoising(list(result.frames), result.image, folder)

    @staticmethod
    def history(outputs_dir: str | os.PathLike):
        """What `outputs_dir` holds (History), newest first."""
        from diffusers_tui.engine.files import history

        return history.read_history(outputs_dir)

    @staticmethod
    def history_pages(outputs_dir: str | os.PathLike, page_size: int = 500):
        """The same, a page (History) at a time, read from the index's end: the newest come at once."""
        from diffusers_tui.engine.files import history

        return history.history_pages(outputs_dir, page_size)

    @staticmethod
    def picture(path: str | os.PathLike):
        """A saved picture as an RGB PIL image, refused when it is not a regular file or too large to show."""
        from diffusers_tui.engine.files import untrusted

        return untrusted.open_picture(path)

    @staticmethod
    def tidy_outputs(outputs_dir: str | os.PathLike) -> list[str]:
        """Remove stale temporary files and finish saves cut short; returns a line for each thing found."""
        from diffusers_tui.engine.files import upkeep

        return upkeep.tidy(outputs_dir) if Path(outputs_dir).expanduser().is_dir() else []

    @staticmethod
    def private_folder(path: str | os.PathLike) -> Path:
        """`path` made (0700) or checked to be a folder of this user's alone; OutputError otherwise."""
        from diffusers_tui.engine.files import upkeep

        return upkeep.private_folder(path)

    def read_recipe(self, path: str | os.PathLike):
        """The recipe in any PNG (Recipe): ours, or another tool's; its LoRAs and embeddings looked for here."""
        from diffusers_tui.engine.files import reading
        from diffusers_tui.engine.models.dressing import matched

        return matched(reading.recipe_from_png(path), self.options)


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
        return OutOfMemory(f"out of memory {where}; what the run held was freed: {memory_advice(loaded, progress)}")
    text = str(error).splitlines()[0] if str(error) else ""
    return RunError(f"the run failed {where}: {type(error).__name__}: {text}".rstrip(": "))


def memory_advice(loaded, progress: _Progress) -> str:
    """The option that would fit, for where the run ran out: the decode, or the model calls."""
    decoding = progress.total and progress.step >= progress.total
    options = []
    if decoding and getattr(loaded, "vae_mode", "full") != "tiled":
        options.append("--vae tiled (decodes the image in tiles, so any size fits)")
    elif getattr(loaded.device, "type", "cpu") == "cuda":
        if str(loaded.dtype) == "torch.float32":
            options.append("--dtype auto (half precision: half the memory)")
        offload = getattr(loaded, "offload", "none")
        if offload == "none":
            options.append("--offload model (only the part running stays on the GPU)")
        if offload != "sequential":
            options.append("--offload sequential (the least GPU memory, slowest)")
    options += ["a smaller size", "fewer runs compared at once"]
    return "try " + ", or ".join(options)


def free_memory() -> None:
    """Collect what a failed run left behind and hand cached GPU memory back."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _guidance(loaded) -> dict:
    """The summary's guidance fields: what the number means on this model (a bare UNet takes none)."""
    if loaded.pipeline is None:
        return {"guidance": "none", "guidance_meaning": "none: an unconditional model takes no guidance",
                "negative_prompt": False}
    from diffusers_tui.engine.models.families import guidance_style, takes
    from diffusers_tui.engine.sampling.variants import has_pag

    style = guidance_style(loaded.pipeline)
    return {"guidance": style.kind, "guidance_meaning": style.meaning, "guidance_default": style.default,
            "negative_prompt": style.negative_prompt, "guidance_rescale": takes(loaded.pipeline, "guidance_rescale"),
            "pag": has_pag(loaded.pipeline)}

"""The body of the app's one generation worker, and how a finished run is captioned.

The worker thread runs the engine and only posts messages: each step's progress (at
most `fps` times a second), then the result, or the failure. Frames come from the
engine's LivePreview thread, which decodes the newest step at the same cap; it converts
them to cells there and posts them too. Both are given everything as values when they
start: the request, the cancel event, the pane's cell box.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from textual.worker import get_current_worker

from diffusers_tui.engine import Engine, GenerationRequest, GenerationResult, LivePreview
from diffusers_tui.ui.failures import describe_failure
from diffusers_tui.ui.messages import RunFailed, RunFinished, StepRendered
from diffusers_tui.ui.render import render_strips


def live_preview(run_id: int, fps: int, cells: tuple[int, int], depth: str, method: str | None,
                 post: Callable[[object], object]) -> LivePreview:
    """The run's live frames: decoded by the engine's thread, converted to cells and posted from it."""
    last = [None]  # the frame before: cells that hardly moved keep its colours (render.LIVE_TOLERANCE)

    def on_frame(lane: int, snapshot) -> None:
        last[0] = render_strips(snapshot.preview, cells, depth, previous=last[0])
        post(StepRendered(run_id, snapshot, last[0]))

    return LivePreview(on_frame, fps=fps, method=method)


def generate(engine: Engine, request: GenerationRequest, run_id: int, fps: int, cancel: threading.Event,
             cells: tuple[int, int], post: Callable[[object], object], live: LivePreview | None = None,
             depth: str = "truecolor") -> None:
    """Run `request` on `engine` in this (worker) thread, posting StepRendered, then RunFinished or RunFailed."""
    worker = get_current_worker()
    last_drawn = [0.0]
    try:
        def on_step(snapshot) -> None:
            if worker.is_cancelled:
                cancel.set()
            now = time.perf_counter()
            # The progress line goes out at most `fps` times a second; frames come from `live`.
            if now - last_drawn[0] < 1 / fps and snapshot.step < snapshot.total:
                return
            last_drawn[0] = now
            post(StepRendered(run_id, snapshot, None))

        result = engine.run(request, on_step, cancel, live=live)
        image = result.shown_image
        post(RunFinished(run_id, result, render_strips(image, cells, depth) if image is not None else None))
    except BaseException as error:  # noqa: BLE001 - the thread always reports back, whatever happened
        message, field = describe_failure(error)
        post(RunFailed(run_id, message, field))


def run_caption(result: GenerationResult) -> str:
    """What the pane says under a run that ended."""
    if result.stopped:
        return f"stopped at step {result.model_calls}/{result.total_calls}: last good preview"
    if result.cancelled:
        return f"cancelled at step {result.model_calls}/{result.total_calls}"
    return f"done: {result.model_calls} model calls in {result.elapsed_s:.1f}s · [ ] scrub · ctrl+s save"

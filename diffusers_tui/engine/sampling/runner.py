"""One run of a loaded model: a pipeline through its step callback, or the hand-stepped UNet loop.

`run(loaded, request, on_step, cancel)` is called from a worker thread. It reports every
model call to `on_step` as a frozen StepSnapshot, stops within one step once `cancel` is
set (skipping the final decode), and returns a GenerationResult.
"""

from __future__ import annotations

import threading
from typing import Callable

from diffusers_tui.engine.request import GenerationRequest, GenerationResult, StepSnapshot
from diffusers_tui.engine.sampling.pipeline_loop import run_pipeline
from diffusers_tui.engine.sampling.preflight import check_mode, check_steps, resolve_size, scheduler_for
from diffusers_tui.engine.sampling.unet_loop import run_unet_loop

OnStep = Callable[[StepSnapshot], None]


def run(loaded, request: GenerationRequest, on_step: OnStep | None = None,
        cancel: threading.Event | None = None) -> GenerationResult:
    """Run `request` on `loaded`; see the module docstring for the contract."""
    check_mode(loaded, request)
    width, height = resolve_size(loaded, request)
    scheduler = scheduler_for(loaded, request)
    check_steps(scheduler, request)
    cancel = cancel or threading.Event()
    on_step = on_step or (lambda snapshot: None)
    loop = run_unet_loop if loaded.mode == "unet" else run_pipeline
    return loop(loaded, request, scheduler, width, height, on_step, cancel)

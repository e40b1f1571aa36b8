"""Preview overhead: the engine watched as the app watches it, against plain `pipe(...)`.

    python benchmarks/preview_overhead.py [--model demo] [--steps 20] [--repeats 15]

Both sides run the same pipeline, scheduler, prompt, seed and size in one process,
alternating, and each figure is the median over rounds of the ratio within a round (the
machine's speed drifts between rounds by more than the effect measured). "watched" records every step's
latents and has a LivePreview deliver decoded frames to a consumer that keeps them, at
the default frame cap, as the engine hands them to the app (goal: at most 1.03); and the
app's own path, each frame also converted to terminal cells in the preview thread
(ui.generation.live_preview; goal: at most 1.03). Beside them, with no goal: a preview
decoded for every step in the step loop, by each method.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scheduler", default="Euler")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import gc
    import sys

    import torch

    from diffusers_tui.engine.sampling import registry as schedulers
    from diffusers_tui.ui.app import GC_THRESHOLDS, SWITCH_INTERVAL_S

    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as the app runs (ui.app sets these on mount)
    gc.set_threshold(*GC_THRESHOLDS)
    from diffusers_tui.engine import Engine
    from diffusers_tui.engine.request import GenerationRequest

    engine = Engine(threads=args.threads)
    loaded = engine.loaded_model(args.model)
    pipe = loaded.pipeline
    prompt = "a red circle on a blue background"
    entry = schedulers.get(args.scheduler)

    def plain() -> None:
        pipe.scheduler = schedulers.build(entry, loaded.original_scheduler_config)
        with torch.inference_mode():
            pipe(prompt, num_inference_steps=args.steps, guidance_scale=5.0,
                 generator=torch.Generator().manual_seed(0), output_type="pil")

    from diffusers_tui.engine import LivePreview
    from diffusers_tui.settings import SETTINGS
    from diffusers_tui.ui import generation

    fps = SETTINGS["fps"].default
    summary = engine.load(args.model)
    process = loaded.decoders.process
    if process is not None:  # the TAESD decoder's own process: timed once it is up, as in a session
        print(f"decoder process ready: {process.wait_until_started(60)}")

    def request(method: str) -> GenerationRequest:
        return GenerationRequest(prompt=prompt, model=args.model, scheduler=args.scheduler, steps=args.steps,
                                 seed=0, preview_every=1, preview_method=method)

    def watched(consume):
        def run() -> None:
            engine.run(request("auto"), live=LivePreview(lambda lane, snapshot: consume(snapshot.preview), fps=fps))
        return run

    kept: list = [None]  # the newest frame, as the app keeps it (a growing list would tax the collector)

    def keep(frame) -> None:
        kept[0] = frame

    def every_step(method: str):
        def run() -> None:
            engine.run(request(method), on_step=lambda snapshot: engine.preview(snapshot, method))
        return run

    def as_the_app_watches() -> None:
        # The app's own path (ui.generation.live_preview): each frame converted to cells in the preview
        # thread, against the frame before, and posted (here: kept).
        live = generation.live_preview(1, fps, (64, 32), "truecolor", None, keep)
        engine.run(request("auto"), live=live)

    contenders = {"plain": plain, "recorded": lambda: engine.run(request("auto")), "watched": watched(keep),
                  "cells": as_the_app_watches}
    contenders.update({method: every_step(method) for method in summary.preview_methods})
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for name, function in contenders.items():  # warm-up
        function()
    for _ in range(args.repeats):
        for name, function in contenders.items():
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    base = statistics.median(timings["plain"])
    ratios = {name: statistics.median(t / p for t, p in zip(timings[name], timings["plain"])) for name in timings}
    print(f"model {args.model}, {args.steps} steps of {args.scheduler}, torch threads {args.threads}, "
          f"median of {args.repeats} alternating runs; plain pipe(...) {base * 1000:.0f} ms")
    print(f"{'figure':<44}{'ours ms':>9}{'plain ms':>10}{'ratio':>8}  goal")
    rows = [("recorded", "every step recorded, no frames decoded", "-"),
            ("watched", f"live frames at {fps}/s, auto = {summary.preview_auto}", "<= 1.03"),
            ("cells", "the same, converted to cells as the app does", "<= 1.03")]
    rows += [(method, f"a {method} preview decoded every step", "-") for method in summary.preview_methods]
    for name, label, goal in rows:
        median = statistics.median(timings[name])
        print(f"{label:<44}{median * 1000:>9.0f}{base * 1000:>10.0f}{ratios[name]:>8.3f}  {goal}")


if __name__ == "__main__":
    main()

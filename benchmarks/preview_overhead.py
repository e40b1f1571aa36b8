"""Preview overhead: the engine watched as the app watches it, against plain `pipe(...)`.

    python benchmarks/preview_overhead.py [--model demo] [--steps 20] [--repeats 15]

Both sides run the same pipeline, scheduler, prompt, seed and size in one process,
alternating, and each figure is the median over rounds of the ratio within a round (the
machine's speed drifts between rounds by more than the effect measured). "watched" records every step's
latents and has a LivePreview deliver decoded frames to a consumer that keeps them, at
the default frame cap, as the engine hands them to the app (goal: at most 1.03).
Beside it, with no goal: the consumer also converting each frame to terminal cells (the
app's own work, whose cost benchmarks/frame_conversion.py holds to its goal), and a
preview decoded for every step in the step loop, by each method.
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

    import torch

    from diffusers_tui.engine.sampling import registry as schedulers
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
    from diffusers_tui.ui.render import render_strips

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

    kept: list = []

    def every_step(method: str):
        def run() -> None:
            engine.run(request(method), on_step=lambda snapshot: engine.preview(snapshot, method))
        return run

    contenders = {"plain": plain, "recorded": lambda: engine.run(request("auto")), "watched": watched(kept.append),
                  "cells": watched(lambda image: render_strips(image, (64, 32)))}
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
            ("cells", "the same, each frame converted to cells", "-")]
    rows += [(method, f"a {method} preview decoded every step", "-") for method in summary.preview_methods]
    for name, label, goal in rows:
        median = statistics.median(timings[name])
        print(f"{label:<44}{median * 1000:>9.0f}{base * 1000:>10.0f}{ratios[name]:>8.3f}  {goal}")


if __name__ == "__main__":
    main()

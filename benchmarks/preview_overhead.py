"""Preview overhead: the engine's runner with a preview every step against plain `pipe(...)`.

    python benchmarks/preview_overhead.py [--model demo] [--steps 20] [--repeats 9]

Both sides run the same pipeline, scheduler, prompt, seed and size in one process,
alternating, and the figure is the ratio of their medians (goal: at most 1.03).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
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

    def ours(method: str):
        def run() -> None:
            engine.run(GenerationRequest(prompt=prompt, model=args.model, scheduler=args.scheduler,
                                         steps=args.steps, seed=0, preview_every=1, preview_method=method),
                       on_step=lambda snapshot: None)
        return run

    contenders = {"plain": plain, "auto": ours("auto"), "vae": ours("vae")}
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for name, function in contenders.items():  # warm-up
        function()
    for _ in range(args.repeats):
        for name, function in contenders.items():
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    base = statistics.median(timings["plain"])
    print(f"model {args.model}, {args.steps} steps of {args.scheduler}, torch threads {args.threads}, "
          f"median of {args.repeats} alternating runs; plain pipe(...) {base * 1000:.0f} ms")
    print(f"{'figure':<36}{'ours ms':>9}{'plain ms':>10}{'ratio':>8}  goal")
    for name, label, goal in (("auto", "preview every step, default (map)", "<= 1.03"),
                              ("vae", "preview every step, full VAE decode", "-")):
        median = statistics.median(timings[name])
        print(f"{label:<36}{median * 1000:>9.0f}{base * 1000:>10.0f}{median / base:>8.3f}  {goal}")


if __name__ == "__main__":
    main()

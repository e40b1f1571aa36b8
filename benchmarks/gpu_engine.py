"""The σ-space engine at Stable Diffusion 1.5 scale on a GPU: its cost, and no host-device sync per step.

    python benchmarks/gpu_engine.py [--steps 30] [--repeats 5]

Builds a pipeline with SD 1.5's architecture and random weights (nothing is downloaded), float16,
512x512, previews off. Side by side, alternating: Euler through the engine's stand-in scheduler
against diffusers' EulerDiscreteScheduler (goal <= 1.02x the time); DPM++ 2M SDE with its Brownian
tree on the device against the engine's Euler (the tree's cost, reported). Device synchronisations
in the step loop, counted with torch's sync debug mode: the engine's samplers add none per step
against diffusers' Euler (goal 0), the Brownian tree included. Without CUDA it says so.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_engine: no CUDA device here; these figures need a GPU machine")
        return

    from gpu_preview import synchronisations, timed  # benchmarks/ is on the path when run as a script
    from sd15 import build_sd15

    from diffusers_tui.engine import Engine, GenerationRequest, LoadOptions

    folder = tempfile.mkdtemp(prefix="sd15-random-")
    build_sd15(folder)
    engine = Engine(LoadOptions(device="cuda", dtype="float16"))
    engine.load(folder)

    def run(sampler: str):
        def function() -> None:
            engine.run(GenerationRequest(prompt="a red circle on a blue background", model=folder, scheduler=sampler,
                                         steps=args.steps, seed=0, guidance=7.5, width=512, height=512,
                                         preview_method="none"))
        return function

    contenders = {"diffusers Euler": run("Euler (diffusers)"), "engine Euler": run("Euler"),
                  "engine DPM++ 2M SDE (tree)": run("DPM++ 2M SDE"), "engine DPM++ 2M (A1111)": run("DPM++ 2M")}
    for function in contenders.values():  # warm-up
        function()
    timings = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, function in contenders.items():
            timings[name].append(timed(function))
    median = {name: statistics.median(values) for name, values in timings.items()}
    syncs = {name: synchronisations(function)[0] for name, function in contenders.items()}
    base = median["diffusers Euler"]
    print(f"device {torch.cuda.get_device_name()}, SD 1.5 architecture (random weights), float16, 512x512, "
          f"{args.steps} steps, median of {args.repeats}")
    print(f"{'contender':<30}{'seconds':>9}{'ratio':>8}{'syncs':>7}{'added/step':>12}")
    for name in contenders:
        added = (syncs[name] - syncs["diffusers Euler"]) / args.steps
        print(f"{name:<30}{median[name]:>9.3f}{median[name] / base:>8.3f}{syncs[name]:>7}{added:>12.2f}")
    print("goals: engine Euler <= 1.02 of diffusers Euler; 0 syncs added per step")


if __name__ == "__main__":
    main()

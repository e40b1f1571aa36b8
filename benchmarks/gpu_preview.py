"""Preview overhead at Stable Diffusion 1.5 scale on a GPU: time, peak memory, synchronisations.

    python benchmarks/gpu_preview.py [--steps 30] [--repeats 5]

Builds a pipeline with SD 1.5's architecture and random weights, and a TAESD decoder
from its config (nothing is downloaded), float16, 512x512. Runs the engine as the app
does (every step's latents recorded, a LivePreview delivering decoded frames to a
consumer at the default frame cap) with the `latent` and the `taesd` method, against
plain `pipe(...)`, alternating. Figures: time ratio (goals <= 1.02 latent, <= 1.03
taesd), peak GPU memory ratio (goal <= 1.05), and the device synchronisations the step
loop's thread makes beyond plain's (goal: none added per step), counted with torch's
sync debug mode; the preview thread's own are reported beside. Without CUDA it says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_preview: no CUDA device here; these figures need a GPU machine")
        return

    from diffusers import AutoencoderTiny
    from sd15 import build_sd15  # benchmarks/ is on the path when run as a script

    from diffusers_tui.engine import Engine, LoadOptions
    from diffusers_tui.engine.sampling import registry as schedulers
    from diffusers_tui.settings import SETTINGS

    folder = tempfile.mkdtemp(prefix="sd15-random-")
    build_sd15(folder)
    AutoencoderTiny().save_pretrained(os.path.join(folder, "taesd"))  # TAESD's own architecture, random weights
    engine = Engine(LoadOptions(device="cuda", dtype="float16"))
    loaded = engine.loaded_model(folder)
    pipe = loaded.pipeline
    prompt = "a red circle on a blue background"
    entry = schedulers.get("Euler (diffusers)")  # diffusers' own class on both sides: previews' cost alone
    fps = SETTINGS["fps"].default
    print("load notes:", *loaded.notes, sep="\n  ")

    def plain() -> None:
        pipe.scheduler = schedulers.build(entry, loaded.original_scheduler_config)
        with torch.inference_mode():
            pipe(prompt, num_inference_steps=args.steps, guidance_scale=7.5, height=512, width=512,
                 generator=torch.Generator().manual_seed(0), output_type="pil")

    request = dict(prompt=prompt, model=folder, scheduler="Euler (diffusers)", steps=args.steps, seed=0, guidance=7.5,
                   width=512, height=512)
    print(f"device {torch.cuda.get_device_name()}, SD 1.5 architecture (random weights), float16, 512x512, "
          f"{args.steps} Euler steps, live frames at {fps}/s, median of {args.repeats}")
    measure(engine, plain, request, args.steps, args.repeats, {"latent": "<= 1.02", "taesd": "<= 1.03"})


def measure(engine, plain, request: dict, steps: int, repeats: int, goals: dict[str, str]) -> None:
    """Time, peak memory and step-loop synchronisations of the engine watched as the app watches
    it, by each preview method in `goals`, against `plain()`; prints one line per figure."""
    import torch

    from diffusers_tui.engine import GenerationRequest, LivePreview
    from diffusers_tui.settings import SETTINGS

    fps = SETTINGS["fps"].default

    def watched(method: str):
        def run() -> None:
            kept = []
            engine.run(GenerationRequest(**request, preview_method=method),
                       live=LivePreview(lambda lane, snapshot: kept.append(snapshot.preview), fps=fps))
        return run

    def peak_memory(function) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        function()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    contenders = {"plain": plain, **{method: watched(method) for method in goals}}
    for function in contenders.values():  # warm-up
        function()
    timings = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            timings[name].append(timed(function))
    base = statistics.median(timings["plain"])
    memory = {name: peak_memory(function) for name, function in contenders.items()}
    syncs = {name: synchronisations(function) for name, function in contenders.items()}
    print(f"{'figure':<44}{'ours':>11}{'plain':>11}{'ratio':>8}  goal")
    for name, goal in goals.items():
        mine = statistics.median(timings[name])
        print(f"{'time, ' + name + ' live previews':<44}{mine:>10.2f}s{base:>10.2f}s{mine / base:>8.3f}  {goal}")
    for name in goals:
        print(f"{'peak GPU memory, ' + name:<44}{memory[name] / 2**20:>8.0f}MiB{memory['plain'] / 2**20:>8.0f}MiB"
              f"{memory[name] / memory['plain']:>8.3f}  <= 1.05")
    for name in goals:
        added = (syncs[name][0] - syncs["plain"][0]) / steps
        print(f"{'syncs in the step loop, ' + name:<44}{syncs[name][0]:>11}{syncs['plain'][0]:>11}{added:>8.2f}"
              f"  0 added per step (preview thread: {syncs[name][1]})")


def timed(function) -> float:
    """Seconds `function` takes, the device's queue drained before and after."""
    import torch

    torch.cuda.synchronize()
    started = time.perf_counter()
    function()
    torch.cuda.synchronize()
    return time.perf_counter() - started


def synchronisations(function) -> tuple[int, int]:
    """Device synchronisations while `function` runs: (in the calling thread, in other threads)."""
    import torch

    caller, counts = threading.current_thread(), [0, 0]
    original = warnings.showwarning

    def count(message, *rest, **kwargs):
        if "synchroniz" in str(message):
            counts[threading.current_thread() is not caller] += 1

    warnings.simplefilter("always")
    warnings.showwarning = count
    torch.cuda.set_sync_debug_mode("warn")
    try:
        function()
    finally:
        torch.cuda.set_sync_debug_mode("default")
        warnings.showwarning = original
    return counts[0], counts[1]


if __name__ == "__main__":
    main()

"""Preview overhead at Stable Diffusion 1.5 scale on a GPU: time, peak memory, synchronisations.

    python benchmarks/gpu_preview.py [--steps 30] [--repeats 5]

Builds a pipeline with SD 1.5's architecture and random weights (nothing is downloaded),
float16, 512x512, and runs the engine with a preview every step against plain
`pipe(...)`, alternating. Figures: time ratio (goal <= 1.02), peak GPU memory ratio
(goal <= 1.05), and the device synchronisations the preview path adds (counted with
torch's sync debug mode). Without a CUDA device it says so and exits.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
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

    from sd15 import build_sd15  # benchmarks/ is on the path when run as a script

    from diffusers_tui.engine.sampling import registry as schedulers
    from diffusers_tui.engine import Engine
    from diffusers_tui.engine.request import GenerationRequest
    from diffusers_tui.engine import LoadOptions

    folder = tempfile.mkdtemp(prefix="sd15-random-")
    build_sd15(folder)
    engine = Engine(LoadOptions(device="cuda", dtype="float16"))
    loaded = engine.loaded_model(folder)
    pipe = loaded.pipeline
    prompt = "a red circle on a blue background"
    entry = schedulers.get("Euler")

    def plain() -> None:
        pipe.scheduler = schedulers.build(entry, loaded.original_scheduler_config)
        with torch.inference_mode():
            pipe(prompt, num_inference_steps=args.steps, guidance_scale=7.5, height=512, width=512,
                 generator=torch.Generator().manual_seed(0), output_type="pil")

    def ours() -> None:
        engine.run(GenerationRequest(prompt=prompt, model=folder, scheduler="Euler", steps=args.steps, seed=0,
                                     guidance=7.5, width=512, height=512, preview_every=1),
                   on_step=lambda snapshot: None)

    def timed(function) -> float:
        torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        torch.cuda.synchronize()
        return time.perf_counter() - started

    def peak_memory(function) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        function()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    def synchronisations(function) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                function()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    plain(), ours()  # warm-up
    timings = {"plain": [], "ours": []}
    for _ in range(args.repeats):
        timings["plain"].append(timed(plain))
        timings["ours"].append(timed(ours))
    base, mine = statistics.median(timings["plain"]), statistics.median(timings["ours"])
    memory_base, memory_mine = peak_memory(plain), peak_memory(ours)
    syncs_base, syncs_mine = synchronisations(plain), synchronisations(ours)
    print(f"device {torch.cuda.get_device_name()}, SD 1.5 architecture (random weights), float16, 512x512, "
          f"{args.steps} Euler steps, median of {args.repeats}")
    print(f"{'figure':<48}{'ours':>11}{'plain':>11}{'ratio':>8}  goal")
    print(f"{'time, preview every step / plain pipe(...)':<48}{mine:>10.2f}s{base:>10.2f}s{mine / base:>8.3f}  <= 1.02")
    print(f"{'peak GPU memory / plain pipe(...)':<48}{memory_mine / 2**20:>8.0f}MiB{memory_base / 2**20:>8.0f}MiB"
          f"{memory_mine / memory_base:>8.3f}  <= 1.05")
    print(f"{'device synchronisations in a run':<48}{syncs_mine:>11}{syncs_base:>11}{'':>8}  "
          f"no more than plain")


if __name__ == "__main__":
    main()

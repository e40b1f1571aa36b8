"""LoRAs on the demo: how long loading one takes, and what a weight change between runs costs.

    python benchmarks/lora_switch.py [--repeats 9] [--steps 20]

A LoRA made here for the demo's UNet (peft, rank 4 on its attention projections, as a user's LoRA
trainer makes one) is written into a temporary LoRA folder. Then:

- load: the first run with it, against the same run again (the file already loaded): the difference
  is the load (goal: under 1 s);
- switch: runs that change the LoRA's weight every time (0.3, 0.7, 0.3, ...), alternating with runs that
  keep it, side by side in one process; the median of the per-round ratio (goal: at most 1.05, a weight
  change costing at most 5% of a demo run). Both sides use the same engine, prompt, seed and sampler.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from diffusers_tui.engine import Engine, GenerationRequest, LoadOptions, quiet
    from diffusers_tui.engine.demo import __file__ as demo_package
    from tests.tiny_loras import make_lora

    quiet()
    folder = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    lora = make_lora(str(Path(demo_package).parent / "demo-sd"), folder, seed=7)
    engine = Engine(LoadOptions(lora_dirs=(str(folder),)), threads=1)
    engine.load("demo")

    def run(weight: float | None) -> float:
        loras = () if weight is None else ((lora.stem, weight),)
        request = GenerationRequest(prompt="a red circle on a blue background", model="demo", steps=args.steps,
                                    seed=1, scheduler="Euler", preview_method="none", loras=loras)
        started = time.perf_counter()
        engine.run(request)
        return time.perf_counter() - started

    run(None)  # warm: the model, the sampler, torch's first calls
    first = run(0.5)  # loads the file
    again = statistics.median(run(0.5) for _ in range(3))
    print(f"load: first run with the LoRA {first * 1000:.0f} ms, the same run after {again * 1000:.0f} ms: "
          f"load {(first - again) * 1000:.0f} ms (goal: under 1000 ms)")

    kept, switched, ratios = [], [], []
    for round_number in range(args.repeats):
        kept.append(run(0.5))  # the weight the run before had: nothing to set but the same weights
        run(0.5)
        switched.append(run(0.3 if round_number % 2 else 0.7))  # a new weight every time
        ratios.append(switched[-1] / kept[-1])
        run(0.5)  # back, so the next kept run finds its own weight set
    print(f"switch: {args.steps} steps of Euler, median of {args.repeats} rounds: same weight "
          f"{statistics.median(kept) * 1000:.0f} ms, new weight {statistics.median(switched) * 1000:.0f} ms, "
          f"ratio {statistics.median(ratios):.3f} (goal: at most 1.05)")


if __name__ == "__main__":
    main()

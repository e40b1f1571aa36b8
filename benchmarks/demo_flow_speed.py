"""demo-flow's step against demo's, on this CPU, at each one's native size, and what it ships.

    python benchmarks/demo_flow_speed.py [--repeats 7] [--steps 20]

Each run is 20 model calls of the model's own sampler with guidance (two passes a call,
as a user runs it), previews off. The two models alternate; each figure is the median
seconds a model call. Goal: demo-flow's call at most 2x demo's. Its weights: at most
15 MB, and all built-in models' together at most 45 MB.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

MB = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    from diffusers_tui.engine import Engine, GenerationRequest
    from diffusers_tui.engine.models.names import DEMO_DIR

    engines = {model: Engine() for model in ("demo", "demo-flow")}  # each keeps its model loaded
    seconds: dict[str, list[float]] = {model: [] for model in engines}
    for repeat in range(args.repeats + 1):
        for model, engine in engines.items():
            request = GenerationRequest(prompt="a red circle on a blue background", model=model, steps=args.steps,
                                        seed=repeat, preview_method="none")
            started = time.perf_counter()
            result = engine.run(request)
            if repeat:  # the first run of each warms up (allocator, kernels): not counted
                seconds[model].append((time.perf_counter() - started) / result.model_calls)
    demo, flow = (statistics.median(seconds[m]) for m in ("demo", "demo-flow"))
    print(f"model call: demo-flow {flow * 1000:.1f} ms, demo {demo * 1000:.1f} ms, ratio {flow / demo:.2f} (goal <= 2)")

    def weights(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*.safetensors"))

    flow_mb = weights(DEMO_DIR / "demo-flow") / MB
    all_mb = sum(weights(folder) for folder in DEMO_DIR.iterdir() if folder.is_dir()) / MB
    print(f"weights: demo-flow {flow_mb:.1f} MB (goal <= 15), all built-in models {all_mb:.1f} MB (goal <= 45)")


if __name__ == "__main__":
    main()

"""Scheduler comparison: lanes batched into one UNet call per round, against one after another.

    python benchmarks/compare_batching.py [--model demo] [--repeats 5] [--steps 20]
    python benchmarks/compare_batching.py --sd15 --device cuda --dtype float16   # on a GPU
    python benchmarks/compare_batching.py --model demo-flow                      # SD3's layout
    python benchmarks/compare_batching.py --study [--sd15 --device cuda ...]     # 4 x 3 x 4 seeds

Four schedulers at equal steps, the same prompt and seed, previews off (the sampling cost
alone). The two ways alternate; each figure is the median. Goal on a CPU: at most 0.8;
at Stable Diffusion 1.5 scale on a GPU (random weights from the SD 1.5 configs, float16,
512x512): at most 0.6. With --study, a study of the four schedulers x 10, 15 and 20 steps x
4 seeds (48 lanes, run in chunks of 16 per model call), built by the study builder as
`compare --steps 10,15,20 --seeds 4` builds it: goal at most 0.5 on a CPU, 0.4 on a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

SCHEDULERS = ("Euler", "DPM++ 2M", "UniPC", "DDIM")
#: On a flow-matching model (demo-flow): its samplers.
FLOW_SCHEDULERS = ("Euler", "DPM++ 2M", "UniPC", "LCM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--sd15", action="store_true",
                        help="build a Stable Diffusion 1.5-sized pipeline with random weights and use it")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--study", action="store_true", help="4 schedulers x 10,15,20 steps x 4 seeds")
    args = parser.parse_args()

    from diffusers_tui.engine.comparison import ComparisonRequest, Lane
    from diffusers_tui.engine import Engine
    from diffusers_tui.engine.request import GenerationRequest
    from diffusers_tui.engine import LoadOptions

    model = args.model
    if args.sd15:
        model = tempfile.mkdtemp(prefix="sd15-random-")
        from sd15 import build_sd15  # benchmarks/ is on the path when run as a script

        build_sd15(model)
    engine = Engine(LoadOptions(device=args.device, dtype=args.dtype))
    base = GenerationRequest(model=model, prompt="a red circle on a blue background", seed=7,
                             preview_method="none")
    flow = engine.load(model).statuses[0].entry.class_name.startswith("FlowMatch")
    names = FLOW_SCHEDULERS if flow else SCHEDULERS
    lanes = tuple(Lane(name, args.steps) for name in names)
    batched = ComparisonRequest(base, lanes, batch=True)
    one_by_one = ComparisonRequest(base, lanes, batch=False)
    if args.study:
        from dataclasses import replace

        from diffusers_tui.engine import build_comparison

        batched = build_comparison(base, list(names), "10,15,20", seeds=4)
        one_by_one = replace(batched, batch=False)
    engine.compare(ComparisonRequest(base, lanes[:1], batch=False))  # load and warm up
    timings: dict[str, list[float]] = {"batched": [], "one by one": []}
    for _ in range(args.repeats):
        for label, request in (("batched", batched), ("one by one", one_by_one)):
            started = time.perf_counter()
            result = engine.compare(request)
            timings[label].append(time.perf_counter() - started)
            assert result.batched == (label == "batched"), "this model does not batch"
    ours, baseline = statistics.median(timings["batched"]), statistics.median(timings["one by one"])
    print(f"{'figure':<58}{'ours':>9}{'baseline':>10}{'ratio':>8}  goal")
    goal = "<= 0.6" if args.sd15 else "- (reported)" if flow else "<= 0.8"
    label = f"compare {len(lanes)} schedulers x {args.steps} steps, batched / one by one"
    if args.study:
        goal = "<= 0.4" if args.sd15 else "- (reported)" if flow else "<= 0.5"
        label = f"study {len(names)} schedulers x 3 step counts x 4 seeds, batched / one by one"
    print(f"{label:<58}{ours:>8.2f}s{baseline:>9.2f}s{ours / baseline:>8.3f}  {goal}")


if __name__ == "__main__":
    main()

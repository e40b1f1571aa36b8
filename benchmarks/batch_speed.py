"""Batches and img2img on the demo: a batch of 4 against 4 single runs, and what from_pipe adds in memory.

    python benchmarks/batch_speed.py [--repeats 7] [--steps 20]

- batch: a batch size of 4 (one model call for the 4 images) against the same 4 seeds run one by one,
  side by side in one process, one torch thread, no live preview; the median of the per-round ratio
  (goal: at most 0.6);
- from_pipe: the process's resident memory after a text-to-image run, and after the first img2img run
  (which builds the image-to-image pipeline from the loaded one); the growth as a share (goal: at
  most 5%: the pipelines share their modules).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        import os

        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from diffusers_tui.engine import Engine, GenerationRequest, quiet

    quiet()
    engine = Engine(threads=1)
    base = dict(prompt="a red circle on a blue background", model="demo", steps=args.steps, scheduler="Euler",
                preview_method="none")

    def timed(**fields) -> float:
        started = time.perf_counter()
        engine.run(GenerationRequest(**base, **fields))
        return time.perf_counter() - started

    timed(seed=1)  # warm: the model, the sampler, torch's first calls
    before = _resident_bytes()
    picture = Path(tempfile.mkdtemp(prefix="batch-bench-")) / "start.png"
    engine.save(engine.run(GenerationRequest(**base, seed=1)), picture.parent).rename(picture)
    after_plain = _resident_bytes()
    engine.run(GenerationRequest(**base, seed=1, init_image=str(picture), strength=0.6))
    after_img2img = _resident_bytes()
    growth = (after_img2img - after_plain) / after_plain
    print(f"from_pipe: resident {before / 2**20:.0f} MiB warm, {after_plain / 2**20:.0f} MiB after a run, "
          f"{after_img2img / 2**20:.0f} MiB after the first img2img run: +{growth:.1%} (goal: at most 5%)")

    ratios = []
    for round_number in range(args.repeats):
        batch = timed(seed=10, batch_size=4)
        singles = sum(timed(seed=10 + index) for index in range(4))
        ratios.append(batch / singles)
        print(f"round {round_number + 1}: batch of 4 {batch * 1000:.0f} ms, 4 singles {singles * 1000:.0f} ms, "
              f"ratio {batch / singles:.3f}")
    print(f"batch of 4 / 4 single runs: median {statistics.median(ratios):.3f} (goal: at most 0.6)")


if __name__ == "__main__":
    main()

"""Run every benchmark, each in a fresh interpreter, and print their figures.

    python -m benchmarks [--only NAME ...] [--skip NAME ...]

Each benchmark prints one line per figure: name, ours, baseline, ratio, goal. A fresh
process per benchmark keeps start-up and import figures honest. The demo quality check
is left out by default (minutes of sampling): `--only demo_quality` runs it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ORDER = ("startup", "frame_conversion", "frame_bytes", "key_latency", "link_latency", "preview_overhead",
         "compare_batching", "memory", "a1111_parity", "engine_overhead", "demo_flow_speed", "gpu_preview", "gpu_engine",
         "gpu_transformers")
SLOW = ("demo_quality", "sampler_parity", "sde_step_counts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"run these: {', '.join(ORDER + SLOW)}")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME")
    args = parser.parse_args()
    names = [n for n in (args.only or ORDER) if n not in args.skip]
    unknown = [n for n in names if not (HERE / f"{n}.py").exists()]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; choose from {', '.join(ORDER + SLOW)}")
    failed = []
    for name in names:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent)
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
        if done.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

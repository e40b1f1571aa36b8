"""How far one seed's picture moves between two step counts, per sampler: the noise path an SDE sampler follows.

With a Brownian tree per image (the engine's SDE samplers) the noise is a function of the seed
and σ, so 50 and 100 steps follow one path; diffusers' class draws fresh Gaussian noise each
step, so they follow unrelated ones. Euler is the deterministic yardstick. RMSE 0-255 on the demo.

    python benchmarks/sde_step_counts.py [--steps 50,100] [--seeds 11,1,42]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from diffusers_tui.engine import Engine, GenerationRequest

PROMPT = "a red circle on a blue background"
SAMPLERS = ("DPM++ 2M SDE", "DPM++ 2M SDE (diffusers)", "Euler")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="50,100")
    parser.add_argument("--seeds", default="11,1,42")
    args = parser.parse_args(argv)
    few, many = (int(part) for part in args.steps.split(","))
    seeds = [int(part) for part in args.seeds.split(",")]
    engine = Engine()

    def pixels(sampler: str, steps: int, seed: int) -> np.ndarray:
        request = GenerationRequest(prompt=PROMPT, scheduler=sampler, steps=steps, seed=seed, guidance=5.0,
                                    preview_method="none")
        return np.asarray(engine.run(request).image.convert("RGB"), dtype=float)

    print(f"RMSE (0-255) between {few} and {many} steps on the demo, seeds {', '.join(map(str, seeds))}")
    for sampler in SAMPLERS:
        values = [float(np.sqrt(((pixels(sampler, few, seed) - pixels(sampler, many, seed)) ** 2).mean()))
                  for seed in seeds]
        print(f"{sampler:<26} " + "  ".join(f"{value:6.2f}" for value in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())

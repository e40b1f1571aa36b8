"""What the σ-space engine costs beside diffusers' own scheduler, and what a Brownian tree costs, on the demo.

    python benchmarks/engine_overhead.py [--repeats 9] [--steps 20]

Side by side in one process, alternating, previews off, 20 steps, the median of the repeats:
- Euler through the engine's stand-in scheduler against diffusers' EulerDiscreteScheduler through
  the same pipeline (goal: <= 1.02x the time);
- DPM++ 2M SDE with its Brownian tree against the same sampler fed plain Gaussian draws, and the
  time spent inside the tree's queries as a share of the run, timed in place (goal: the tree costs
  <= 3%). The two runs' difference also holds the machine's run-to-run noise; the timed share does not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from diffusers_tui.engine import Engine, GenerationRequest
from diffusers_tui.engine.sampling.sigma import noise as noise_module

PROMPT = "a red circle on a blue background"


class _Gaussian:
    """Plain draws in a tree's place, called as the tree is."""

    def __init__(self, x_like, seed: int):
        self.shape, self.dtype = x_like.shape, x_like.dtype
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, sigma, sigma_next):
        return torch.randn(self.shape, generator=self.generator, dtype=self.dtype)


class _TimedTree:
    """Adds up the time spent inside Brownian-tree queries while it is active."""

    def __enter__(self):
        self.seconds, self.original = 0.0, noise_module._BrownianNoise.__call__
        timer = self

        def timed(noise, sigma, sigma_next):
            started = time.perf_counter()
            try:
                return timer.original(noise, sigma, sigma_next)
            finally:
                timer.seconds += time.perf_counter() - started

        noise_module._BrownianNoise.__call__ = timed
        return self

    def __exit__(self, *exc):
        noise_module._BrownianNoise.__call__ = self.original


class _GaussianInstead:
    """Hands SDE samplers plain Gaussian draws instead of tree increments: the tree's cost, isolated."""

    def __enter__(self):
        self.original = noise_module.NoiseSource.for_sampler

        def for_sampler(source, x_like, *args, brownian=False, **kwargs):
            if not brownian:
                return self.original(source, x_like, *args, **kwargs)
            return _Gaussian(x_like, source.seeds[0])

        noise_module.NoiseSource.for_sampler = for_sampler
        return self

    def __exit__(self, *exc):
        noise_module.NoiseSource.for_sampler = self.original


def _seconds(engine: Engine, sampler: str, steps: int, seed: int) -> float:
    request = GenerationRequest(prompt=PROMPT, scheduler=sampler, steps=steps, seed=seed, preview_method="none")
    started = time.perf_counter()
    engine.run(request)
    return time.perf_counter() - started


def tree_queries(repeats: int, steps: int) -> tuple[float, float]:
    """ms a query of a 20-step run's Brownian increments, alone: the engine's tree and torchsde.BrownianTree
    (the demo's 4x8x8 latent, a fresh tree per seed, the median of the seeds)."""
    import torchsde

    from diffusers_tui.engine.sampling.sigma import brownian

    low, high = 0.0292, 14.6146
    sigmas = [high * (low / high) ** (i / (steps - 1)) for i in range(steps)]
    pairs = list(zip(sigmas[1:], sigmas[:-1]))
    ours, theirs = [], []
    for seed in range(repeats):
        started = time.perf_counter()
        tree = brownian.BrownianTree(low, high, (4, 8, 8), torch.float32, torch.device("cpu"), seed,
                                     noise_module._torchsde_randn)
        for a, b in pairs:
            tree(a, b)
        ours.append((time.perf_counter() - started) / len(pairs))
        started = time.perf_counter()
        reference = torchsde.BrownianTree(torch.tensor(low), torch.zeros(4, 8, 8), torch.tensor(high), entropy=seed)
        with warnings.catch_warnings():  # its clamp warning at the tree's ends
            warnings.simplefilter("ignore")
            for a, b in pairs:
                reference(torch.tensor(a), torch.tensor(b))
        theirs.append((time.perf_counter() - started) / len(pairs))
    return statistics.median(ours) * 1000, statistics.median(theirs) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    engine = Engine()
    engine.load("demo")
    times: dict[str, list[float]] = {"engine Euler": [], "diffusers Euler": [], "tree": [], "gaussian": [],
                                     "tree share": []}
    for repeat in range(args.repeats + 1):  # the first round warms up: not counted
        pair = [("engine Euler", "Euler"), ("diffusers Euler", "Euler (diffusers)")]
        for key, sampler in pair if repeat % 2 else pair[::-1]:
            seconds = _seconds(engine, sampler, args.steps, repeat)
            if repeat:
                times[key].append(seconds)
        for key in ("tree", "gaussian") if repeat % 2 else ("gaussian", "tree"):
            if key == "gaussian":
                with _GaussianInstead():
                    seconds = _seconds(engine, "DPM++ 2M SDE", args.steps, repeat)
            else:
                with _TimedTree() as tree:
                    seconds = _seconds(engine, "DPM++ 2M SDE", args.steps, repeat)
                if repeat:
                    times["tree share"].append(tree.seconds / seconds)
            if repeat:
                times[key].append(seconds)
    median = {key: statistics.median(values) for key, values in times.items()}
    euler = median["engine Euler"] / median["diffusers Euler"]
    tree = median["tree"] / median["gaussian"]
    print(f"Euler, engine against diffusers' class: {median['engine Euler'] * 1000:.0f} ms against "
          f"{median['diffusers Euler'] * 1000:.0f} ms a run, ratio {euler:.3f} (goal <= 1.02)")
    print(f"DPM++ 2M SDE, Brownian tree against Gaussian draws: {median['tree'] * 1000:.0f} ms against "
          f"{median['gaussian'] * 1000:.0f} ms a run, ratio {tree:.3f} (goal <= 1.03)")
    print(f"DPM++ 2M SDE, time inside the Brownian tree's queries: {median['tree share']:.1%} of the run "
          f"(goal <= 3%)")
    ours, theirs = tree_queries(args.repeats, args.steps)
    print(f"a tree query alone, {args.steps - 1} a run: {ours:.2f} ms (brownian.py) against {theirs:.2f} ms "
          f"(torchsde.BrownianTree), ratio {ours / theirs:.2f} (no goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

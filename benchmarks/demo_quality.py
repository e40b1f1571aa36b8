"""Demo model quality, read back by the dataset's own checker; optionally draws the docs figures.

    python benchmarks/demo_quality.py [--cases 50] [--flow-cases 50] [--ddpm-seeds 50] [--figures docs]

demo-sd: 50 prompt x seed cases at the default settings and with guidance off; each
attribute (colour, shape, background) is reported on its own. demo-flow: the same cases on
its own flow sampler at 20 steps (goals: colour >= 95%, shape >= 90%, background >= 95%),
with guidance off, and at 8 steps (goal: all three right in >= 80% of cases). demo-ddpm: the
share of seeds whose sample passes the dataset's plausibility check.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--flow-cases", type=int, default=50, help="demo-flow's cases (0: skip it)")
    parser.add_argument("--ddpm-seeds", type=int, default=50)
    parser.add_argument("--ddpm-steps", type=int, default=1000)
    parser.add_argument("--ddpm-model", default="demo-ddpm", help="another demo-ddpm folder to check")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--figures", type=Path, help="also write the README figures into this folder")
    args = parser.parse_args()

    from diffusers_tui.engine.demo.shapes import all_specs, read_shape
    from diffusers_tui.engine import Engine
    from diffusers_tui.engine.request import GenerationRequest

    engine = Engine()
    defaults = GenerationRequest()
    rng = random.Random(0)
    cases = [(rng.choice(all_specs()), rng.randrange(2**32)) for _ in range(args.cases)]
    images = []
    settings = [(f"default (guidance {defaults.guidance:g})", defaults.guidance), ("guidance off", 0.0)]
    for label, guidance in settings if cases else []:
        right = {"colour": 0, "shape": 0, "background": 0}
        for spec, seed in cases:
            result = engine.run(GenerationRequest(prompt=spec.caption, seed=seed, guidance=guidance,
                                                  preview_method="none"))
            reading = read_shape(result.image)
            for attribute in right:
                right[attribute] += getattr(reading, attribute) == getattr(spec, attribute)
            if guidance == defaults.guidance:
                images.append(result.image)
        shares = ", ".join(f"{k} {v / len(cases):.0%}" for k, v in right.items())
        print(f"demo-sd {label}, {defaults.steps} steps, {len(cases)} cases: {shares}", flush=True)

    flow_rng = random.Random(0)  # demo-sd's cases, whichever of the two is run
    flow_cases = [(flow_rng.choice(all_specs()), flow_rng.randrange(2**32)) for _ in range(args.flow_cases)]
    flow_settings = [("default: its own sampler, 20 steps", 20, defaults.guidance, {"colour": 0.95, "shape": 0.90,
                                                                                     "background": 0.95}),
                     ("guidance off, 20 steps", 20, 0.0, None), ("8 steps", 8, defaults.guidance, "all 0.80")]
    flow_images = []
    for label, steps, guidance, goal in flow_settings if flow_cases else []:
        right = {"colour": 0, "shape": 0, "background": 0, "all three": 0}
        for spec, seed in flow_cases:
            result = engine.run(GenerationRequest(prompt=spec.caption, model="demo-flow", seed=seed, steps=steps,
                                                  guidance=guidance, preview_method="none"))
            if goal is not None and not isinstance(goal, str):
                flow_images.append(result.image)
            reading = read_shape(result.image)
            hits = {a: getattr(reading, a) == getattr(spec, a) for a in ("colour", "shape", "background")}
            for attribute, hit in hits.items():
                right[attribute] += hit
            right["all three"] += all(hits.values())
        shares = {k: v / len(flow_cases) for k, v in right.items()}
        if isinstance(goal, dict):
            met = all(shares[k] >= v for k, v in goal.items())
            verdict = f" (goal colour >= 95%, shape >= 90%, background >= 95%: {'met' if met else 'NOT met'})"
        elif goal:
            verdict = f" (goal all three >= 80%: {'met' if shares['all three'] >= 0.8 else 'NOT met'})"
        else:
            verdict = ""
        print(f"demo-flow {label}, {len(flow_cases)} cases: "
              + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) + verdict, flush=True)

    ddpm_images = []
    plausible = 0
    for seed in range(args.first_seed, args.first_seed + args.ddpm_seeds):
        result = engine.run(GenerationRequest(model=args.ddpm_model, steps=args.ddpm_steps, seed=seed,
                                              preview_method="none"))
        plausible += read_shape(result.image).plausible
        ddpm_images.append(result.image)
    if args.ddpm_seeds:
        print(f"demo-ddpm, {args.ddpm_steps} DDPM steps, {args.ddpm_seeds} seeds: "
              f"{plausible / args.ddpm_seeds:.0%} plausible", flush=True)

    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        if images:
            _grid(images[:24], 8, 2).save(args.figures / "demo-grid.png")
        if ddpm_images:
            _grid(ddpm_images[:20], 10, 4).save(args.figures / "demo-ddpm-grid.png")
        if flow_images:
            _grid(flow_images[:24], 8, 2).save(args.figures / "demo-flow-grid.png")
        steps = engine.run(GenerationRequest(prompt="a yellow triangle on a blue background", seed=3,
                                             scheduler="Euler a", steps=12))
        _grid([engine.full_image(s) for s in steps.frames], 12, 2).save(args.figures / "demo-steps.png")


def _grid(images, columns: int, scale: int):
    from PIL import Image

    width, height = images[0].size
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * width * scale, rows * height * scale), "black")
    for i, image in enumerate(images):
        tile = image.resize((width * scale, height * scale), Image.NEAREST)
        sheet.paste(tile, ((i % columns) * width * scale, (i // columns) * height * scale))
    return sheet


if __name__ == "__main__":
    main()

"""Preview fidelity: how close each preview method's picture is to the full decode, mid-run.

    python benchmarks/preview_fidelity.py [--cases 12] [--steps 20] [--figure docs/preview-methods.png]

For each model (demo, demo-ddpm, a tiny random-weight SD pipeline) and each preview
method it has, runs `--cases` prompts and measures, at 25%, 50% and 75% of each run:
the PSNR of the method's preview of the recorded x0 estimate against the full decode of
the same latent (previews smaller than the image are scaled up first, as a pane would);
and, on the demo models, whether the shapes checker reads the 50% preview as the prompt
says (colour, shape, background), beside how often it reads the final image so. Goals on the demo with `auto`: PSNR >= 24 dB at 50%,
checker agreement >= 90% at 50%. `--figure` writes one case's 50% previews per method
beside its final image.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

FRACTIONS = (0.25, 0.5, 0.75)
PSNR_GOAL_DB, CHECKER_GOAL = 24.0, 0.9


def psnr(image, reference) -> float:
    from PIL import Image

    if image.size != reference.size:
        image = image.resize(reference.size, Image.BICUBIC)
    a = np.asarray(image.convert("RGB"), dtype=np.float64)
    b = np.asarray(reference.convert("RGB"), dtype=np.float64)
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def tiny_sd_folder() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import build_tiny_sd

    return str(build_tiny_sd(Path(tempfile.mkdtemp(prefix="tiny-sd-"))))


def measure(engine, model: str, cases: int, steps: int, checker: bool):
    """{method: {fraction: [psnr...]}}, {method: [checker agreed...]}, and one case's pictures."""
    from diffusers_tui.engine import GenerationRequest
    from diffusers_tui.engine.demo.shapes import all_specs, read_shape

    summary = engine.load(model)
    methods = ("auto", *summary.preview_methods) if summary.preview_methods else ("auto",)
    specs = all_specs()[::max(1, len(all_specs()) // cases)][:cases]
    scores = {m: {f: [] for f in FRACTIONS} for m in methods}
    agreed = {m: [] for m in (*methods, "final")}
    pictures = None
    for seed, spec in enumerate(specs):
        result = engine.run(GenerationRequest(prompt=spec.caption, model=model, steps=steps, seed=seed))
        if checker:
            reading = read_shape(result.image)
            agreed["final"].append((reading.colour, reading.shape, reading.background)
                                   == (spec.colour, spec.shape, spec.background))
        for fraction in FRACTIONS:
            frame = result.frames[max(0, round(fraction * len(result.frames)) - 1)]
            full = engine.full_image(frame)
            for method in methods:
                preview = engine.preview(frame, method)
                scores[method][fraction].append(psnr(preview, full))
                if fraction == 0.5 and checker:
                    reading = read_shape(preview.resize(full.size))
                    agreed[method].append((reading.colour, reading.shape, reading.background)
                                          == (spec.colour, spec.shape, spec.background))
        if pictures is None:
            half = result.frames[max(0, round(0.5 * len(result.frames)) - 1)]
            pictures = [(m, engine.preview(half, m)) for m in methods if m != "auto"] + [("final", result.image)]
    return summary, scores, agreed, pictures


def figure(pictures, path: Path) -> None:
    from PIL import Image, ImageDraw

    side, label = 128, 14
    sheet = Image.new("RGB", (side * len(pictures), side + label), "black")
    for index, (name, image) in enumerate(pictures):
        sheet.paste(image.convert("RGB").resize((side, side), Image.NEAREST), (index * side, label))
        ImageDraw.Draw(sheet).text((index * side + 4, 1), name if name == "final" else f"{name} @ 50%", fill="white")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figure", type=Path, help="write the demo's 50%% previews per method beside its final image")
    args = parser.parse_args()

    from diffusers_tui.engine import Engine

    engine = Engine(threads=args.threads)
    print(f"{args.cases} prompts a model, {args.steps} steps (demo-ddpm 100), model's own scheduler; PSNR of the x0 preview "
          "against the full decode of the same latent")
    print(f"{'model':<10}{'method':<14}{'25%':>8}{'50%':>8}{'75%':>8}{'checker@50%':>13}{'@final':>8}  goal")
    # demo-ddpm's own DDPM scheduler needs many steps: at 20 the checker reads no final image right.
    # demo-ddpm is unconditional: no prompt for the checker to agree with.
    for model, steps, checker in (("demo", args.steps, True), ("demo-ddpm", 100, False),
                                  (tiny_sd_folder(), args.steps, False)):
        summary, scores, agreed, pictures = measure(engine, model, args.cases, steps, checker)
        name = model if model.startswith("demo") else "tiny-sd"
        for method, by_fraction in scores.items():
            shown = f"auto={summary.preview_auto}" if method == "auto" else method
            if not summary.preview_methods:
                shown = "auto=pixels"
            medians = [statistics.median(by_fraction[f]) for f in FRACTIONS]
            check = f"{sum(agreed[method]) / len(agreed[method]):.0%}" if agreed[method] else "-"
            goal = (f"50% >= {PSNR_GOAL_DB:g} dB, checker >= {CHECKER_GOAL:.0%}"
                    if name == "demo" and method == "auto" else "")
            cells = "".join(f"{'inf' if math.isinf(m) else f'{m:.1f}':>8}" for m in medians)
            final = f"{sum(agreed['final']) / len(agreed['final']):.0%}" if agreed["final"] else "-"
            print(f"{name:<10}{shown:<14}{cells}{check:>13}{final:>8}  {goal}")
        if args.figure and name == "demo":
            figure(pictures, args.figure)
            print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()

"""Frame conversion: a 64x64 preview to terminal cells, ours against rich-pixels as shipped.

    python benchmarks/frame_conversion.py [--repeats 200] [--python-gc]

Both turn the same PIL image into the segments of a 64x32-cell pane (the work done in
the worker thread), for three sets of frames: the x0 and the noisy-sample previews of
real demo runs, and synthetic noise where every pixel is a new colour (the worst case).
Both run under the app's collector settings (frozen heap, GC_THRESHOLDS in ui/app.py);
--python-gc keeps Python's defaults. Alternating, median; goal: ours at most 0.35 of it.
Also printed: the same including Rich's rendering to truecolor terminal bytes, and the
bytes a frame costs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--python-gc", action="store_true", help="keep Python's default collector settings")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image
    from rich.console import Console
    from rich.segment import Segment, Segments
    from rich_pixels import Pixels

    from diffusers_tui.ui.render import render_strips

    rng = np.random.default_rng(0)
    # Worst case: smooth images with noise, a new one each time, so no colour repeats and
    # no neighbours merge (what a noisy-sample preview looks like).
    base = np.linspace(0, 255, 64)[None, :, None] * np.ones((64, 1, 3))
    noisy = [Image.fromarray(np.clip(base + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype("uint8"))
             for _ in range(args.repeats)]
    frame_sets = {"synthetic noise (worst case)": noisy,
                  "a demo run's x0 previews": _demo_previews(args.repeats, "x0"),
                  "a demo run's noisy-sample previews": _demo_previews(args.repeats, "noisy")}

    import gc

    from diffusers_tui.ui.app import GC_THRESHOLDS

    # Both renderers run under the app's collector settings: frozen after the model
    # loaded, and its thresholds (--python-gc: Python's defaults instead).
    if not args.python_gc:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    def to_bytes(pixels) -> int:
        out = io.StringIO()
        Console(file=out, color_system="truecolor", width=64, force_terminal=True).print(pixels, end="")
        return len(out.getvalue().encode())

    def ours(image):
        strips = render_strips(image, (64, 32))
        return Segments([segment for strip in strips for segment in [*strip, Segment.line()]])

    def shipped(image):
        return Pixels.from_image(image)

    print(f"{'figure (64x64 px -> 64x32 cells)':<56}{'ours':>9}{'shipped':>10}{'ratio':>8}  goal")
    for label, images in frame_sets.items():
        timings = {"ours": [], "shipped": [], "ours+bytes": [], "shipped+bytes": []}
        for image in images:
            for name, build in (("ours", ours), ("shipped", shipped)):
                started = time.perf_counter()
                pixels = build(image)
                timings[name].append(time.perf_counter() - started)
                to_bytes(pixels)
                timings[name + "+bytes"].append(time.perf_counter() - started)
        for what, key, goal in (("to cells", "", "<= 0.35"), ("to terminal bytes", "+bytes", "-")):
            a, b = statistics.median(timings["ours" + key]), statistics.median(timings["shipped" + key])
            print(f"{label + ', ' + what:<56}{a * 1000:>7.2f}ms{b * 1000:>8.2f}ms{a / b:>8.3f}  {goal}")
    print(f"bytes per noisy frame: ours {to_bytes(ours(noisy[0]))}, shipped {to_bytes(shipped(noisy[0]))}")


def _demo_previews(count: int, kind: str) -> list:
    """The previews of real demo runs (Euler a, 30 steps, several prompts), `count` in all."""
    from diffusers_tui.engine.demo.shapes import all_specs
    from diffusers_tui.engine import Engine
    from diffusers_tui.engine.request import GenerationRequest

    engine, previews, seed = Engine(), [], 0
    while len(previews) < count:
        spec = all_specs()[seed * 7 % len(all_specs())]
        # Full decodes: 64x64 frames, the size the live pane shows on the demo.
        result = engine.run(GenerationRequest(prompt=spec.caption, seed=seed, scheduler="Euler a", steps=30,
                                              preview=kind))
        previews.extend(engine.full_image(snapshot).convert("RGB") for snapshot in result.frames)
        seed += 1
    return previews[:count]


if __name__ == "__main__":
    main()

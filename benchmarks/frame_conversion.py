"""Frame conversion: a 64x64 preview to terminal cells, ours against rich-pixels as shipped.

    python benchmarks/frame_conversion.py [--repeats 200]

Both turn the same PIL image into the segments of a 64x32-cell pane (the work done in
the worker thread). Alternating, median; goal: ours at most 0.35 of it. Also printed:
the same including Rich's rendering to truecolor terminal bytes, and the bytes a frame costs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    import numpy as np
    from PIL import Image
    from rich.console import Console
    from rich.segment import Segment, Segments
    from rich_pixels import Pixels

    from diffusers_tui.ui.render import render_strips

    rng = np.random.default_rng(0)
    # A smooth image with noise, like a mid-run preview: few equal neighbours to merge.
    base = np.linspace(0, 255, 64)[None, :, None] * np.ones((64, 1, 3))
    image = Image.fromarray(np.clip(base + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype("uint8"))

    def to_bytes(pixels) -> int:
        out = io.StringIO()
        Console(file=out, color_system="truecolor", width=64, force_terminal=True).print(pixels, end="")
        return len(out.getvalue().encode())

    def ours():
        strips = render_strips(image, (64, 32))
        return Segments([segment for strip in strips for segment in [*strip, Segment.line()]])

    def shipped():
        return Pixels.from_image(image)

    timings = {"ours": [], "shipped": [], "ours+bytes": [], "shipped+bytes": []}
    for _ in range(args.repeats):
        for name, build in (("ours", ours), ("shipped", shipped)):
            started = time.perf_counter()
            pixels = build()
            timings[name].append(time.perf_counter() - started)
            to_bytes(pixels)
            timings[name + "+bytes"].append(time.perf_counter() - started)
    print(f"{'figure':<44}{'ours':>9}{'shipped':>10}{'ratio':>8}  goal")
    for label, key, goal in (("64x64 frame to cells (segments)", "", "<= 0.35"),
                             ("64x64 frame to terminal bytes", "+bytes", "-")):
        a, b = statistics.median(timings["ours" + key]), statistics.median(timings["shipped" + key])
        print(f"{label:<44}{a * 1000:>7.2f}ms{b * 1000:>8.2f}ms{a / b:>8.3f}  {goal}")
    print(f"bytes per frame: ours {to_bytes(ours())}, shipped {to_bytes(shipped())} (64x32 cells)")


if __name__ == "__main__":
    main()

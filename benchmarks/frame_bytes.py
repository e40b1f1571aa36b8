"""Terminal bytes per live frame of a 64x32-cell pane, through Textual's own screen updates.

    python benchmarks/frame_bytes.py [--steps 30]

The app runs headless at a size that gives the live pane 64x32 cells for the demo's
64x64 pictures. Every screen update Textual composes is rendered to truecolor terminal
bytes and passed through the app's output filter (ui.terminal_output: colours only where
they change), as the real driver writes them, and counted while a demo run streams its
frames. Two runs, same seed: the app's way (only cells that moved by more than the live
tolerance, through the filter), and Textual's plain way (the whole pane each frame, every
segment's full style); both against the naive 40 bytes per cell (goal <= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os

from rich.console import Console

NAIVE_BYTES_PER_CELL = 40
SIZE = (112, 45)  # settings panel 46 columns; the pane's content is then 64x33 (picture + caption)


async def bytes_per_frame(steps: int, ours: bool, preview: str) -> tuple[float, int]:
    from textual._compositor import CompositorUpdate
    from textual.widgets import Input

    from diffusers_tui.engine import Engine
    from app_harness import wait_until_loaded  # benchmarks/ is on the path when run as a script

    from diffusers_tui.ui.app import DiffusersTuiApp
    from diffusers_tui.ui.terminal_output import TerminalOutput
    from diffusers_tui.ui.widgets.live_pane import LivePane

    app = DiffusersTuiApp(Engine(), outputs_dir="/tmp/diffusers-tui-bench", model="demo")
    console = Console(file=io.StringIO(), color_system="truecolor", force_terminal=True, width=SIZE[0])
    written = [0]
    display = app._display
    output = TerminalOutput(SIZE) if ours else (lambda text: text)

    def counting_display(screen, renderable):
        if isinstance(renderable, CompositorUpdate):
            written[0] += len(output(renderable.render_segments(console)).encode())
        display(screen, renderable)

    app._display = counting_display
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_loaded(pilot, app)
        pane = app.query_one(LivePane)
        assert pane.cell_box == (64, 32), f"the pane is {pane.cell_box}, not 64x32 cells"
        frames = [0]
        show = pane.show

        def counting_show(strips, caption=None):
            frames[0] += strips is not None
            if not ours:
                pane._drawn = None  # Textual's plain way: the whole pane each frame
            show(strips, caption)

        pane.show = counting_show
        for field, value in (("#steps", str(steps)), ("#seed", "7"), ("#fps", "60")):
            app.query_one(field, Input).value = value
        app.query_one("#seed-lock").value = True
        app.query_one("#preview").value = preview
        await pilot.pause(0.5)
        written[0] = 0
        await pilot.press("ctrl+g")
        await asyncio.wait_for(app.idle.wait(), 120)
        await pilot.pause(0.3)
    return written[0] / max(frames[0], 1), frames[0]


def main() -> None:
    os.environ["COLORTERM"] = "truecolor"  # the naive figure is truecolor's; headless would pick 256 colours
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    naive = NAIVE_BYTES_PER_CELL * 64 * 32
    print(f"{'figure (bytes per frame, 64x32 cells)':<52}{'ours':>9}{'baseline':>10}{'ratio':>8}  goal")
    for preview in ("x0", "noisy"):
        ours, frames = asyncio.run(bytes_per_frame(args.steps, True, preview))
        full, _ = asyncio.run(bytes_per_frame(args.steps, False, preview))
        goal = "<= 0.5" if preview == "x0" else "-"
        print(f"{f'{preview} previews: ours / naive 40 B a cell':<52}{ours:>9.0f}{naive:>10}{ours / naive:>8.3f}  {goal}")
        print(f"{f'{preview} previews: ours / whole pane, unfiltered':<52}{ours:>9.0f}{full:>10.0f}{ours / full:>8.3f}  -"
              f"   ({frames} frames)")


if __name__ == "__main__":
    main()

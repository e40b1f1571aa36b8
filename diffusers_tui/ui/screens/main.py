"""The main screen: the settings sidebar, the live pane, the progress line and the log.

It draws what arrives for its own pane (a re-rendered frame, a new pane size), so no
other screen has to stop a message meant for this one.
"""

from __future__ import annotations

from functools import partial

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Log, Static

from diffusers_tui.engine import Engine, batch_cell
from diffusers_tui.ui.graphics import final_image_class
from diffusers_tui.ui.messages import FrameReady
from diffusers_tui.ui.render import render_strips
from diffusers_tui.ui.widgets.live_pane import LivePane
from diffusers_tui.ui.widgets.settings_panel import SettingsPanel
from diffusers_tui.ui.widgets.steady_footer import SteadyFooter

MIN_COLUMNS, MIN_ROWS = 80, 24


def main_layout(model: str, graphics: str) -> ComposeResult:
    """The main screen's widgets. The App composes them (so they exist when the App mounts)."""
    yield Header()
    with Horizontal(id="body"):
        yield SettingsPanel(model, id="settings")
        with Vertical(id="main"):
            yield LivePane(id="pane")
            if graphics != "halfblock":
                yield final_image_class(graphics)(id="final-image")
            yield Static("idle", id="progress")
            yield Log(id="log", max_lines=500)  # the σ plot is mounted after it, after the first frame
    yield Static(f"diffusers-tui needs a terminal of at least {MIN_COLUMNS}x{MIN_ROWS}", id="too-small")
    yield SteadyFooter()


class MainScreen(Screen):
    """The default screen, holding `main_layout`: it shows what the App's run reports."""

    #: Focused when the screen first shows: focusing the scrolling panel first (Textual's default)
    #: and then the prompt restyled the panel twice before the first frame.
    AUTO_FOCUS = "#prompt"
    #: Focus inside these (the sampler filter, the list, the schedule type) is choosing a sampler.
    CHOOSING_SAMPLER = ("sampler-filter", "scheduler", "schedule")
    #: The σ plot takes the log's place while a sampler or schedule type is being chosen: the log's lines need
    #: its whole width. (Beside the log on wide screens, its redraws near a Sixel image left the image's
    #: border row behind in xterm, two runs in three.)
    DEFAULT_CSS = """
    MainScreen #schedule-plot { display: none; }
    MainScreen.-choosing-sampler #schedule-plot { display: block; }
    MainScreen.-choosing-sampler #log { display: none; }
    """

    def __init__(self, graphics: str = "halfblock") -> None:
        super().__init__()
        #: How a finished image is shown: "halfblock", "kitty" or "sixel" (see ui.graphics).
        self.graphics = graphics

    def on_descendant_focus(self, event) -> None:
        choosing = any(widget.id in self.CHOOSING_SAMPLER for widget in event.widget.ancestors_with_self)
        self.set_class(choosing, "-choosing-sampler")

    @property
    def pane(self) -> LivePane:
        return self.query_one("#pane", LivePane)

    def set_progress(self, text: str) -> None:
        # The line is one row high whatever it says: no layout pass, which would repaint
        # the whole screen on every step and make key presses wait behind it.
        self.query_one("#progress", Static).update(text, layout=False)

    def show_step(self, snapshot, pixels) -> None:
        """A step of the running generation: the progress line, and its frame when it has one."""
        rate = snapshot.step / snapshot.elapsed_s if snapshot.elapsed_s > 0 else 0.0
        eta = (snapshot.total - snapshot.step) / rate if rate > 0 else 0.0
        sigma = f" σ={snapshot.sigma:.3f}" if snapshot.sigma is not None else ""
        self.set_progress(
            f"step {snapshot.step}/{snapshot.total} · {rate:.1f} it/s · ETA {eta:.1f}s · t={snapshot.timestep:.0f}{sigma}")
        if pixels is not None:
            self.pane.show(pixels, f"step {snapshot.step}/{snapshot.total} ({snapshot.preview_kind})")

    def show_result(self, result, pixels, caption: str) -> None:
        """A run that ended: its picture (terminal graphics where there are some), caption and figures."""
        self.pane.show(pixels, caption)
        if result.image is not None:
            self.show_final_graphics(result.image, caption)
        self.set_progress(f"step {result.model_calls}/{result.total_calls} · {result.calls_per_second:.1f} it/s · "
                          f"{result.elapsed_s:.2f}s{' · cancelled' if result.cancelled else ''}")

    def show_frame(self, result, index: int | None, cells: tuple[int, int], image_of_batch: int | None = None) -> None:
        """After a run: frame `index` of its record (None or past the end: the final image); of a batch, the
        whole grid, or image `image_of_batch` alone (its place in each frame's grid)."""
        frames, alone = result.frames, image_of_batch is not None and bool(result.batch)
        which = ""
        if alone:
            item = result.batch[image_of_batch]
            which = f"image {image_of_batch + 1}/{len(result.batch)} (seed {item.request.seed}) · "
        if index is None or index >= len(frames):
            final = result.batch[image_of_batch].image if alone else result.image
            image, caption = final or result.shown_image, f"{which}final image · [ ] scrub · ctrl+s save"
            if self.show_final_graphics(final, caption):
                return
        else:
            snapshot = frames[index]
            # Decoded in the render thread, by the panel's method: a full decode can take seconds.
            method = self.query_one(SettingsPanel).preview_method
            image = partial(Engine.preview, snapshot, method)
            if alone:  # its place in the frame's grid; a batch count's calls each lay out their own batch
                size, calls = result.request.batch_size, result.request.batch_count
                place, call = image_of_batch % size, index // max(len(frames) // calls, 1)
                image = partial(lambda frame, where: batch_cell(frame(), size, where), image, place)
                shown_item = result.batch[min(call * size + place, len(result.batch) - 1)]
                which = (f"image {min(call * size + place, len(result.batch) - 1) + 1}/{len(result.batch)} "
                         f"(seed {shown_item.request.seed}) · ")
            sigma = f" · σ={snapshot.sigma:.3f}" if snapshot.sigma is not None else ""
            caption = (f"{which}step {snapshot.step}/{snapshot.total} · t={snapshot.timestep:.0f}{sigma} · "
                       f"{snapshot.elapsed_s:.2f}s")
        self.show_live_pane()
        if image is not None:
            self.render_still(image, caption, cells)

    @work(thread=True, exclusive=True, group="render")
    def render_still(self, image, caption: str, cells: tuple[int, int]) -> None:
        """Show `image` (or what a callable of none returns, made in this thread) in the pane."""
        if callable(image):
            image = image()
        self.post_message(FrameReady(render_strips(image, cells, self.app.colour_depth), caption))

    # ----- the finished image through kitty/sixel where the terminal has them -----
    def show_final_graphics(self, image, caption: str) -> bool:
        """Show `image` with terminal graphics instead of half-blocks; False when there are none."""
        if self.graphics == "halfblock" or image is None:
            return False
        pane, final = self.pane, self.query_one("#final-image")
        final.image = image
        final.tooltip = caption
        had_focus = self.focused is pane
        pane.display, final.display = False, True
        if had_focus:
            final.focus()
        self.set_progress(caption)
        return True

    def show_live_pane(self) -> None:
        if self.graphics == "halfblock":
            return
        pane, final = self.pane, self.query_one("#final-image")
        if final.display:
            had_focus = self.focused is final
            final.display, pane.display = False, True
            if had_focus:
                pane.focus()

    def on_resize(self) -> None:
        # The App itself is not told of terminal resizes; its default screen is.
        self.check_terminal_size()

    def check_terminal_size(self) -> None:
        """Below the minimum size, show what size is needed instead of a broken layout."""
        width, height = self.app.size
        too_small = width < MIN_COLUMNS or height < MIN_ROWS
        self.set_class(too_small, "-too-small")
        if too_small:
            self.query_one("#too-small", Static).update(
                f"diffusers-tui needs a terminal of at least {MIN_COLUMNS}x{MIN_ROWS}; this one is {width}x{height}")

    def on_live_pane_resized(self, message: LivePane.Resized) -> None:
        self.app.pane_resized(message.cells)

    def on_frame_ready(self, message: FrameReady) -> None:
        self.pane.show(message.pixels, message.caption)

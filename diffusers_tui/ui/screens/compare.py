"""The comparison screen: a grid of live panes racing, then a synced scrubber, a table, blink.

The screen owns one worker thread that runs the comparison through the engine it is
given and only posts messages (ui.messages): each lane's newest frame, already converted
to cells, then the result.
"""

from __future__ import annotations

import asyncio
import threading
import time
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from diffusers_tui.engine import DISTANCE_NAME, ComparisonRequest, Engine, LivePreview, convergence_data, shown
from diffusers_tui.ui.bindings import COMPARE_BINDINGS
from diffusers_tui.ui.failures import describe_failure
from diffusers_tui.ui.graphics import final_image_class
from diffusers_tui.ui.messages import ComparisonDone, ComparisonFailed, LaneFrame, PanesRendered, Saved, SaveFailed
from diffusers_tui.ui.render import render_strips
from diffusers_tui.ui.widgets.live_pane import LivePane
from diffusers_tui.ui.widgets.steady_footer import SteadyFooter



class LanePane(LivePane, inherit_bindings=False):
    """One lane's pane; the screen's keys scrub all panes together."""

    DEFAULT_CSS = "LanePane { height: 1fr; min-height: 6; }"

    def __init__(self, index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.frames_shown = 0


class CompareScreen(Screen):
    """Race the marked schedulers; afterwards scrub, blink, open one full-size, save."""

    #: Textual's Screen repaints all of itself when focus moves; the two panes whose focus changed restyle
    #: and repaint on their own. Beside 52 panes that whole-screen repaint was half of what a tab cost.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    DEFAULT_CSS = """
    CompareScreen #lanes { grid-gutter: 0 1; height: 1fr; }
    CompareScreen #single { display: none; height: 1fr; }
    CompareScreen.-single #lanes { display: none; }
    CompareScreen.-single #single { display: block; }
    CompareScreen.-single.-graphics #single { display: none; }
    CompareScreen.-single.-graphics #single-final { display: block; }
    CompareScreen #status { height: 1; padding: 0 1; background: $boost; }
    CompareScreen #results { height: auto; max-height: 14; display: none; }
    CompareScreen.-finished #results { display: block; }
    CompareScreen #table { height: auto; max-height: 14; width: 1fr; }
    CompareScreen ConvergencePlot { width: 1fr; height: 14; }
    """
    BINDINGS = COMPARE_BINDINGS
    #: How often the racing panes are redrawn at most. A redraw re-renders every pane inside the box around
    #: all that changed (Textual's compositor crops to one box), so frames and captions are drawn together.
    RACE_REDRAWS_PER_S = 8

    def __init__(self, engine, request: ComparisonRequest, outputs_dir: str, fps: int = 15) -> None:
        super().__init__()
        self.engine = engine
        self.fps = fps  # live frames per second for all panes together (each lane gets a share)
        self.request = request
        self.outputs_dir = outputs_dir
        self.labels = [lane.label for lane in request.lanes]
        # The reference runs (one, or one per condition, or each lane's own at more steps) come last.
        self.labels += [f"reference: {lane.label}" for lane in request.reference_lanes()]
        self.result = None
        self._pending: dict[int, tuple] = {}  # lane -> (pixels or None, caption): drawn at the next redraw
        self._redraw_timer = None
        self.frames: list[list] = [[] for _ in self.labels]
        self.position: int | None = None  # None: the final images
        self.by_noise = False
        self.partner = (len(request.lanes) if request.reference else (1 if len(self.labels) > 1 else 0))
        self.blinking = False
        self.cancel = threading.Event()
        self.cells = (32, 16)
        self.started = time.perf_counter()
        #: Set once the race has ended (done, cancelled or failed); tests wait on it.
        self.finished = asyncio.Event()

    def compose(self) -> ComposeResult:
        columns = min(4, len(self.labels))
        with Vertical():
            lanes = Grid(id="lanes")
            lanes.styles.grid_size_columns = columns
            with lanes:
                for index, label in enumerate(self.labels):
                    pane = LanePane(index, id=f"lane-{index}")
                    pane.border_title = label
                    yield pane
            yield LivePane(id="single")
            kind = getattr(self.app, "graphics", "halfblock")
            if kind != "halfblock":  # the full-size view of a final image, at the terminal's resolution
                yield final_image_class(kind)(id="single-final")
            yield Static("starting...", id="status")
            with Horizontal(id="results"):
                yield DataTable(id="table", cursor_type="row")
        yield SteadyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#table", DataTable)
        table.add_columns("scheduler", "steps", *self.request.axis_columns(), "model calls", "seconds",
                          "rmse to reference", "ssim", "latent L2")
        self.query_one("#lane-0", LanePane).focus()
        self.race(self.cancel, self.cells)

    # ----- the race -----
    @work(thread=True, exclusive=True, group="compare")
    def race(self, cancel: threading.Event, cells: tuple[int, int]) -> None:
        """The screen's one worker: runs the comparison through the engine and only posts messages."""
        worker = get_current_worker()
        depth = self.app.colour_depth
        lanes = len(self.labels)
        min_gap = lanes / self.fps
        last_drawn = [0.0] * lanes

        def on_lane_step(index: int, snapshot) -> None:
            if worker.is_cancelled:
                cancel.set()
            now = time.perf_counter()
            if snapshot.step < snapshot.total and now - last_drawn[index] < min_gap:
                return
            last_drawn[index] = now
            self.post_message(LaneFrame(index, snapshot, None))

        last_frames: dict[int, list] = {}  # each lane's frame before (render.LIVE_TOLERANCE)

        def on_frame(index: int, snapshot) -> None:  # in the engine's preview thread; lanes share the cap
            pixels = last_frames[index] = render_strips(snapshot.preview, cells, depth, last_frames.get(index))
            self.post_message(LaneFrame(index, snapshot, pixels))

        try:
            live = LivePreview(on_frame, fps=self.fps)
            result = self.engine.compare(self.request, on_lane_step, cancel, live=live)
            finals = [lane.result.shown_image for lane in self._all_lanes(result)]
            pixels = [render_strips(image, cells, depth) if image is not None else None for image in finals]
            self.post_message(ComparisonDone(result, pixels))
        except BaseException as error:  # the thread always reports back
            self.post_message(ComparisonFailed(describe_failure(error)[0]))

    @staticmethod
    def _all_lanes(result) -> list:
        return [*result.lanes, *result.references]

    def on_lane_frame(self, message: LaneFrame) -> None:
        snapshot = message.snapshot
        caption = (f"step {snapshot.step}/{snapshot.total} · {snapshot.step} calls · "
                   f"{snapshot.elapsed_s:.1f}s")
        pixels = message.pixels if message.pixels is not None else self._pending.get(message.lane, (None,))[0]
        self._pending[message.lane] = (pixels, caption)  # a newer caption keeps a frame not yet drawn
        if self._redraw_timer is None and self.result is None:
            self._redraw_timer = self.set_timer(1 / self.RACE_REDRAWS_PER_S, self._draw_pending)

    def _draw_pending(self) -> None:
        self._redraw_timer = None
        pending, self._pending = self._pending, {}
        if self.result is not None:  # the race ended: its final pictures stand
            return
        for lane, (pixels, caption) in pending.items():
            pane = self.query_one(f"#lane-{lane}", LanePane)
            if pixels is not None:
                pane.frames_shown += 1
                pane.show(pixels, caption)
            else:
                pane.caption = caption
        self.query_one("#status", Static).update(
            f"racing {len(self.request.lanes)} runs · {time.perf_counter() - self.started:.1f}s · escape cancels",
            layout=False)

    def on_comparison_done(self, message: ComparisonDone) -> None:
        self.result = message.result
        lanes = self._all_lanes(self.result)
        self.frames = [list(lane.frames) for lane in lanes]
        for index, (lane, pixels) in enumerate(zip(lanes, message.pixels)):
            pane = self.query_one(f"#lane-{index}", LanePane)
            pane.frames_shown += pixels is not None
            pane.show(pixels, _lane_caption(lane))
        table = self.query_one("#table", DataTable)
        for row in self.result.table():
            rmse = "-" if row["rmse_to_reference"] is None else f"{row['rmse_to_reference']:.2f}"
            ssim = "-" if row["ssim_to_reference"] is None else f"{row['ssim_to_reference']:.3f}"
            latent = "-" if row["latent_l2_to_reference"] is None else f"{row['latent_l2_to_reference']:.2f}"
            table.add_row(row["scheduler"], str(row["steps"]), *(str(row[name]) for name in self.request.axis_columns()),
                          str(row["model_calls"]), f"{row['seconds']:.2f}", rmse, ssim, latent)
        self.add_class("-finished")
        points = convergence_data(self.result)
        if points:  # error against model calls per sampler, beside the table (plotting libraries load here)
            from diffusers_tui.ui.widgets.convergence_plot import ConvergencePlot

            plot = ConvergencePlot(id="convergence")
            self.query_one("#results").mount(plot)
            plot.points = points
        how = "batched into one UNet call per round" if self.result.batched else "one after another"
        state = "cancelled" if self.result.cancelled else "done"
        metric = f" · rmse: {DISTANCE_NAME}" if self.result.reference else ""
        self.query_one("#status", Static).update(
            f"{state} in {self.result.elapsed_s:.1f}s ({how}){metric} · [ ] scrub · n align · b blink · "
            f"f full size · ctrl+s save", layout=False)
        for note in self.result.notes:
            self.app.log_line(f"note: {note}")
        if self.result.notes:  # the log is behind this screen: what a study did not use is said here too
            self.app.notify("\n".join(self.result.notes), title="Note", severity="warning", timeout=10)
        self.app.log_line(f"comparison {state}: {len(self.result.lanes)} runs in {self.result.elapsed_s:.1f}s")
        self.finished.set()

    def on_comparison_failed(self, message: ComparisonFailed) -> None:
        self.query_one("#status", Static).update(Text(f"failed: {shown(message.message)}"), layout=False)
        self.app.log_line(f"error: {message.message}")
        self.app.notify(message.message, title="Comparison failed", severity="error", timeout=10)
        self.finished.set()

    @on(LivePane.Resized)
    def pane_resized(self, message: LivePane.Resized) -> None:
        if message.cells != self.cells and not self.has_class("-single"):
            self.cells = message.cells
            if self.result is not None:
                self._show_position()

    # ----- after the race -----
    def action_close(self) -> None:
        if self.result is None:
            self.cancel.set()
            self.query_one("#status", Static).update("cancelling...", layout=False)
            return
        self.app.pop_screen()

    def action_scrub(self, delta: int) -> None:
        if self.result is None:
            return
        longest = max((len(frames) for frames in self._scrub_axis()), default=0)
        current = longest if self.position is None else self.position
        self.position = min(max(current + delta, 0), longest)
        if self.position == longest:
            self.position = None
        self._show_position()

    def _scrub_axis(self) -> list[list]:
        return [self._noise_axis()] if self.by_noise else self.frames

    def _noise_axis(self) -> list:
        """The noise levels to align on: the lane with the most previews sets the grid."""
        return max(self.frames, key=len, default=[])

    def action_toggle_alignment(self) -> None:
        self.by_noise = not self.by_noise
        self.position = None
        self.app.notify("scrub aligned by noise level" if self.by_noise else "scrub by step index")
        self._show_position()

    def action_blink(self) -> None:
        if self.result is None:
            return
        self.blinking = not self.blinking
        self._show_position()

    def action_set_partner(self) -> None:
        pane = self._focused_pane()
        if pane is not None:
            self.partner = pane.index
            self.app.notify(f"blink partner: {self.labels[pane.index]}")

    def action_toggle_single(self) -> None:
        if self.result is None:
            return
        self.toggle_class("-single")
        self._show_position()

    def action_next_metric(self) -> None:
        plots = self.query("#convergence")
        if plots:
            plots.first().next_metric()

    def action_focus_next(self) -> None:
        self.focus_next(LanePane)

    def _focused_pane(self) -> LanePane | None:
        return self.focused if isinstance(self.focused, LanePane) else self.query_one("#lane-0", LanePane)

    def _frame_for(self, lane: int) -> tuple[object, str]:
        """The image and caption lane `lane` shows at the current scrub position."""
        frames = self.frames[lane]
        lane_result = self._all_lanes(self.result)[lane]
        if self.position is None or not frames:
            return lane_result.result.shown_image, _lane_caption(lane_result)
        if self.by_noise:
            target = _noise_level(self._noise_axis()[self.position])
            snapshot = min(frames, key=lambda s: abs(_noise_level(s) - target))
        else:
            snapshot = frames[min(self.position, len(frames) - 1)]
        sigma = f" σ={snapshot.sigma:.3f}" if snapshot.sigma is not None else ""
        # Decoded in the render thread (see render_panes), by the auto method.
        return partial(Engine.preview, snapshot), (f"step {snapshot.step}/{snapshot.total} · t={snapshot.timestep:.0f}{sigma} · "
                                  f"{snapshot.elapsed_s:.2f}s")

    def _show_position(self) -> None:
        focused = self._focused_pane()
        focused_index = focused.index if focused is not None else 0
        jobs = []
        for index in range(len(self.labels)):
            shown = self.partner if self.blinking and index == focused_index else index
            image, caption = self._frame_for(shown)
            if shown != index:
                caption = f"blink: {self.labels[shown]} · {caption}"
            jobs.append((index, image, caption))
        single_shown = self.partner if self.blinking else focused_index
        image, caption = self._frame_for(single_shown)
        jobs.append((-1, image, f"{self.labels[single_shown]} · {caption}"))
        final = self._all_lanes(self.result)[single_shown].result.image if self.result is not None else None
        graphics = self.position is None and final is not None and bool(self.query("#single-final"))
        self.set_class(graphics, "-graphics")
        if graphics:
            self.query_one("#single-final").image = final
        single = self.query_one("#single", LivePane)
        self.render_panes(jobs, self.cells, single.cell_box)

    @work(thread=True, exclusive=True, group="compare-render")
    def render_panes(self, jobs, cells, single_cells) -> None:
        frames = []
        for index, image, caption in jobs:
            image = image() if callable(image) else image
            pixels = (render_strips(image, single_cells if index < 0 else cells, self.app.colour_depth)
                      if image is not None else None)
            frames.append((index, pixels, caption))
        self.post_message(PanesRendered(frames))

    def on_panes_rendered(self, message: PanesRendered) -> None:
        for index, pixels, caption in message.frames:
            pane = self.query_one("#single", LivePane) if index < 0 else self.query_one(f"#lane-{index}", LanePane)
            pane.show(pixels, caption)

    def action_save(self) -> None:
        if self.result is None:
            self.app.notify("the comparison is still running", severity="warning")
            return
        self.save(self.result)

    @work(thread=True, group="save")
    def save(self, result) -> None:
        try:
            folder = self.engine.save_comparison(result, self.outputs_dir)
            self.post_message(Saved(folder / "grid.png", 0))  # the app says where
        except Exception as error:
            self.post_message(SaveFailed(describe_failure(error)[0]))


def _lane_caption(lane_result) -> str:
    result = lane_result.result
    caption = f"{result.model_calls} calls · {result.elapsed_s:.1f}s"
    if lane_result.distance is not None:
        caption += f" · rmse {lane_result.distance:.1f}"
    if result.stopped:
        return caption + " · stopped: NaN"
    return caption + (" · cancelled" if result.cancelled else "")


def _noise_level(snapshot) -> float:
    """Sigma where the scheduler has one, else the timestep (same direction: high is noisy)."""
    return snapshot.sigma if snapshot.sigma is not None else snapshot.timestep

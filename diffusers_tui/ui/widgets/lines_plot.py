"""Several lines on a log-scale y axis, drawn with textual-plot: a saved study's schedules and trajectories."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plot import HiResMode, PlotWidget

from diffusers_tui.engine import shown
from diffusers_tui.ui.widgets.batched_plot import BatchedPlot
from diffusers_tui.ui.widgets.convergence_plot import SERIES_STYLES
from diffusers_tui.ui.widgets.schedule_plot import LogAxisFormatter, legend_line


#: Beyond this many lines the legend row cannot name them all.
MAX_LEGEND_LINES = 8


class LinesPlot(Vertical):
    """A caption and one line per label: y on a log scale (values at or below 0 are left off)."""

    DEFAULT_CSS = """
    LinesPlot { border: round $primary-darken-2; }
    LinesPlot .caption, LinesPlot .legend { height: 1; color: $text-muted; padding: 0 1; }
    LinesPlot PlotWidget { height: 1fr; }
    """

    def __init__(self, caption: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.caption = caption
        #: What is drawn: {label: [(x, y), ...]}.
        self.lines: dict[str, list[tuple[float, float]]] = {}

    def compose(self) -> ComposeResult:
        yield Static(self.caption, classes="caption")
        yield Static("", classes="legend")
        plot = BatchedPlot(allow_pan_and_zoom=False)
        plot.can_focus = False  # nothing to do there with keys
        yield plot

    def on_mount(self) -> None:
        plot = self.query_one(PlotWidget)
        plot.margin_top, plot.margin_bottom, plot.margin_left = 0, 1, 7
        plot.set_y_formatter(LogAxisFormatter())
        plot.show_legend(is_visible=False)  # ours is a fixed row (legend_line)

    def show(self, lines: dict[str, list[tuple[float, float]]]) -> None:
        plot = self.query_one(PlotWidget)
        plot.clear()
        self.lines = {}
        entries = []
        for index, (label, points) in enumerate(lines.items()):
            kept = [(x, y) for x, y in points if y is not None and y > 0]
            if not kept:
                continue
            self.lines[label] = kept
            style = SERIES_STYLES[index % len(SERIES_STYLES)]
            entries.append((shown(label, 40), style))
            plot.plot([x for x, _ in kept], [math.log10(y) for _, y in kept], line_style=style,
                      hires_mode=HiResMode.BRAILLE)
        self.query_one(".legend", Static).update(legend_line(entries), layout=False)
        if len(self.lines) > MAX_LEGEND_LINES:  # the row names the first few: the saved PNG and SVG have them all
            self.query_one(".caption", Static).update(f"{self.caption} ({len(self.lines)} lines; the PNG names them)", layout=False)
        if not self.lines:
            self.query_one(".caption", Static).update(f"{self.caption}: nothing saved for this figure", layout=False)

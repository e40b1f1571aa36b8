"""A comparison's error against model calls per sampler, log-log, drawn in the terminal with textual-plot.

The points are engine.convergence_data's (the same as the saved convergence figure's); `m`
on the comparison screen turns to the next metric: RMSE, latent L2, 1 - SSIM.
"""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plot import HiResMode, PlotWidget

from diffusers_tui.engine import shown
from diffusers_tui.ui.widgets.batched_plot import BatchedPlot
from diffusers_tui.ui.widgets.schedule_plot import LogAxisFormatter, legend_line

#: (key in a point, what the caption calls it), in the order `m` walks them.
METRICS = (("rmse", "RMSE to reference (0-255)"), ("latent_l2", "latent L2 to reference"),
           ("one_minus_ssim", "1 - SSIM to reference"))
#: A colour per series, in the order the lanes have them.
SERIES_STYLES = ("bold yellow", "bold cyan", "bold magenta", "bold green", "bold red", "bold blue", "white",
                 "bright_black")


class ConvergencePlot(Vertical):
    """A caption and a log-log plot of one metric against model calls, a line per series."""

    DEFAULT_CSS = """
    ConvergencePlot { border-left: vkey $primary-darken-2; }
    ConvergencePlot #convergence-caption, ConvergencePlot .legend { height: 1; color: $text-muted; padding: 0 1; }
    ConvergencePlot PlotWidget { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._points: list[dict] = []
        self.metric = 0
        #: What is drawn now: {series: [(model calls, value), ...]}, for tests.
        self.lines: dict[str, list[tuple[float, float]]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="convergence-caption")
        yield Static("", classes="legend")
        plot = BatchedPlot(allow_pan_and_zoom=False)
        plot.can_focus = False  # nothing to do there with keys (m is the screen's)
        yield plot

    def on_mount(self) -> None:
        plot = self.query_one(PlotWidget)
        plot.margin_top, plot.margin_bottom, plot.margin_left = 0, 1, 6
        plot.set_x_formatter(LogAxisFormatter())
        plot.set_y_formatter(LogAxisFormatter())
        plot.show_legend(is_visible=False)  # ours is a fixed row (legend_line)
        self._draw()

    @property
    def points(self) -> list[dict]:
        return self._points

    @points.setter
    def points(self, points: list[dict]) -> None:
        self._points = list(points)
        if self.is_mounted:
            self._draw()

    def next_metric(self) -> None:
        self.metric = (self.metric + 1) % len(METRICS)
        self._draw()

    def _draw(self) -> None:
        key, title = METRICS[self.metric]
        plot = self.query_one(PlotWidget)
        plot.clear()
        self.lines = {}
        series = list(dict.fromkeys(point["series"] for point in self._points))
        entries = []
        for index, name in enumerate(series):
            kept = sorted((point["model_calls"], point[key]) for point in self._points
                          if point["series"] == name and point.get(key) and point[key] > 0)
            if not kept:
                continue
            self.lines[name] = kept
            style = SERIES_STYLES[index % len(SERIES_STYLES)]
            entries.append((shown(name, 40), style))
            plot.plot([math.log10(calls) for calls, _ in kept], [math.log10(value) for _, value in kept],
                      line_style=style, hires_mode=HiResMode.BRAILLE)
        self.query_one(".legend", Static).update(legend_line(entries), layout=False)
        self.query_one("#convergence-caption", Static).update(f"{title} against model calls, log-log · m: next",
                                                                  layout=False)  # one row whatever it says: no layout pass

"""The highlighted sampler's σ schedule, drawn with textual-plot before anything runs (σ on a log scale).

Mounted after the first frame (textual-plot brings numpy). The chosen schedule type is drawn
bright, and the sampler's own (Automatic) dim beside it, so flipping through Karras,
Exponential and Align Your Steps shows how each spends its steps.
"""

from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plot import AxisFormatter, HiResMode, PlotWidget

from diffusers_tui.ui.widgets.batched_plot import BatchedPlot


class LogAxisFormatter(AxisFormatter):
    """Ticks for data plotted as log10(value): at whole decades, labelled with the value itself."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        """Whole decades; where they are too few, 2 and 5 times them too (1, 2, 5, 10, 20, 50...)."""
        low, high = math.floor(min_), math.ceil(max_)
        for multiples in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
            ticks = [math.log10(multiple) + power for power in range(low, high + 1) for multiple in multiples]
            ticks = [tick for tick in ticks if min_ - 1e-9 <= tick <= max_ + 1e-9]
            if len(ticks) >= 3 or len(ticks) >= max_ticks:
                break
        return ticks[:max_ticks] if ticks else [round((min_ + max_) / 2, 2)]

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [f"{10 ** tick:.3g}" for tick in ticks]


def legend_line(entries: list[tuple[str, str]]) -> Text:
    """One row naming each line in its style: "━━ Euler  ━━ DPM++ 2M". Drawn by us, not by textual-plot, whose
    legend is a sized widget: updating it cost a layout pass of the whole screen at every redraw."""
    line = Text(no_wrap=True, overflow="ellipsis")
    for label, style in entries:
        line.append("━━ ", style=style)
        line.append(f"{label}  ")
    return line


class SchedulePlot(Vertical):
    """A caption and the plot: σ against step for the chosen schedule type and the sampler's own."""

    DEFAULT_CSS = """
    SchedulePlot { width: 1fr; }
    SchedulePlot #schedule-caption { height: 1; color: $text-muted; padding: 0 1; }
    SchedulePlot PlotWidget { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static("σ schedule: waiting for the model", id="schedule-caption")
        plot = BatchedPlot(allow_pan_and_zoom=False)
        plot.can_focus = False  # nothing to do there with keys: tab goes on to the next field
        yield plot

    def on_mount(self) -> None:
        plot = self.query_one(PlotWidget)
        # Every row counts in ten: no top margin, the tick labels below, no axis title (the caption says "step").
        plot.margin_top, plot.margin_bottom, plot.margin_left = 0, 1, 6  # the widest y label: "0.001"
        plot.set_y_formatter(LogAxisFormatter())
        plot.show_legend(is_visible=False)  # ours is a fixed row (legend_line)
        #: What is drawn now: {label: σ values}, for tests and for redrawing.
        self.lines: dict[str, list[float]] = {}

    def show(self, caption: str, chosen: tuple[str, list[float]], own: tuple[str, list[float]] | None) -> None:
        """Draw `chosen` (label, σ from first to last step) bright and `own` dim; σ = 0 is left off the log axis."""
        plot = self.query_one(PlotWidget)
        plot.clear()
        plot.set_xlimits(None, None)  # fitted to the data
        plot.set_ylimits(None, None)
        self.lines = {}
        for (label, sigmas), style in [*([(own, "grey50")] if own else []), (chosen, "bold yellow")]:
            if not sigmas:
                continue
            kept = [(step, math.log10(sigma)) for step, sigma in enumerate(sigmas) if sigma > 0]
            if kept:
                plot.plot([step for step, _ in kept], [value for _, value in kept], line_style=style,
                          hires_mode=HiResMode.BRAILLE, label=label)
                self.lines[label] = list(sigmas)
        # Eight rows in all: the caption says which line is which (the chosen one bright, the sampler's own dim).
        if own and own[1] and chosen[0] != own[0]:
            caption = Text.assemble(caption, " · ", ("━━ ", "grey50"), f"{own[0]} dim")
        self.query_one("#schedule-caption", Static).update(caption, layout=False)  # one row: no layout pass

    def show_message(self, text: str) -> None:
        """No line, and `text` in the caption: an empty frame with fixed limits (nothing left from the last line)."""
        plot = self.query_one(PlotWidget)
        plot.clear()
        plot.set_xlimits(0, 1)
        plot.set_ylimits(0, 1)
        self.lines = {}
        self.query_one("#schedule-caption", Static).update(text, layout=False)

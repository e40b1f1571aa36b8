"""textual-plot's PlotWidget, redrawn with less work: each canvas refreshed once, its style worked out once."""

from __future__ import annotations

from contextlib import ExitStack

from textual.app import ComposeResult
from textual.containers import Grid
from textual_hires_canvas import Canvas
from textual_plot import PlotWidget
from textual_plot.plot_widget import Legend


class _OneStyleCanvas(Canvas):
    """A Canvas that works out its Textual style once per paint, not once per line.

    textual-hires-canvas's render_line reads `rich_style` for every line, which walks the widget's
    ancestors each time: about a third of a plot's paint. Outside a paint it is Textual's own."""

    _painting_style = None

    def render_lines(self, crop):
        self._painting_style = Canvas.rich_style.fget(self)
        try:
            return super().render_lines(crop)
        finally:
            self._painting_style = None

    @property
    def rich_style(self):
        return self._painting_style or Canvas.rich_style.fget(self)


class BatchedPlot(PlotWidget):
    """A PlotWidget whose redraw marks each canvas dirty once, and whose canvases style a paint once.

    textual-hires-canvas refreshes a canvas for every cell a line sets (its set_pixel), unless inside its
    batch_refresh(); textual-plot draws without one, so a redraw of a few lines cost hundreds of refreshes
    (a third of the convergence plot's redraw on `m`). Where a textual-plot lacks _render_plot, nothing
    changes: the override is never called.
    """

    def compose(self) -> ComposeResult:
        # As PlotWidget.compose, with the canvases above.
        with Grid():
            for name in ("margin-top", "margin-left", "plot", "margin-bottom"):
                yield _OneStyleCanvas(1, 1, id=name)
        yield Legend(id="legend")

    def _render_plot(self) -> None:
        with ExitStack() as batches:
            for canvas in self.query(Canvas):
                batches.enter_context(canvas.batch_refresh())
            super()._render_plot()

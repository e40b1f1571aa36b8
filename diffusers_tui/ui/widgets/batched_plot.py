"""textual-plot's PlotWidget, its canvases refreshed once per redraw instead of once per cell drawn."""

from __future__ import annotations

from contextlib import ExitStack

from textual_hires_canvas import Canvas
from textual_plot import PlotWidget


class BatchedPlot(PlotWidget):
    """A PlotWidget whose redraw marks each canvas dirty once.

    textual-hires-canvas refreshes a canvas for every cell a line sets (its set_pixel), unless inside its
    batch_refresh(); textual-plot draws without one, so a redraw of a few lines cost hundreds of refreshes
    (a third of the convergence plot's redraw on `m`). Where a textual-plot lacks _render_plot, nothing
    changes: the override is never called.
    """

    def _render_plot(self) -> None:
        with ExitStack() as batches:
            for canvas in self.query(Canvas):
                batches.enter_context(canvas.batch_refresh())
            super()._render_plot()

"""What a redraw costs: the footer rebuilt only when its keys change, a plot redraw refreshing each canvas once."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static
from textual.widgets._footer import FooterKey

from diffusers_tui.ui.widgets.steady_footer import SteadyFooter


class Pane(Static, can_focus=True):
    BINDINGS = [Binding("x", "noop", "Pane key")]


class Panes(App):
    def compose(self) -> ComposeResult:
        yield Pane("one", id="one")
        yield Pane("two", id="two")
        yield Input(id="text")
        yield SteadyFooter()


def _keys(app) -> list[FooterKey]:
    return list(app.query(FooterKey))


async def test_moving_between_panes_with_the_same_keys_keeps_the_footer_and_other_keys_rebuild_it():
    app = Panes()
    async with app.run_test() as pilot:
        app.query_one("#one").focus()
        await pilot.pause()
        before = _keys(app)
        assert "Pane key" in [key.description for key in before]
        app.query_one("#two").focus()
        await pilot.pause()
        assert _keys(app) == before and all(a is b for a, b in zip(_keys(app), before))
        app.query_one("#text").focus()
        await pilot.pause()
        assert "Pane key" not in [key.description for key in _keys(app)]
        app.query_one("#one").focus()
        await pilot.pause()
        assert "Pane key" in [key.description for key in _keys(app)]


async def test_a_plot_redraw_refreshes_each_canvas_once_not_once_per_cell_drawn(monkeypatch):
    """textual-hires-canvas refreshes for every cell a line sets unless batched; the plots batch a redraw."""
    from textual.widget import Widget
    from textual_hires_canvas import Canvas

    from diffusers_tui.ui.widgets.convergence_plot import ConvergencePlot

    class Plot(App):
        def compose(self) -> ComposeResult:
            yield ConvergencePlot(id="plot")

    points = [{"series": name, "model_calls": calls, "rmse": 30.0 / calls * (1 + index), "latent_l2": 1.0,
               "one_minus_ssim": 0.1} for index, name in enumerate(("Euler", "UniPC")) for calls in (5, 10, 20)]
    app = Plot()
    async with app.run_test(size=(100, 30)) as pilot:
        plot = app.query_one("#plot", ConvergencePlot)
        plot.points = points
        await pilot.pause()
        refreshes = []
        widget_refresh = Widget.refresh

        def counted(self, *args, **kwargs):  # what reaches Textual: a canvas's own refresh returns early in a batch
            if isinstance(self, Canvas):
                refreshes.append(self.id)
            return widget_refresh(self, *args, **kwargs)

        monkeypatch.setattr(Widget, "refresh", counted)
        plot.next_metric()
        await pilot.pause()
        await pilot.pause()
        assert refreshes and max(refreshes.count(name) for name in set(refreshes)) <= 3, refreshes
        assert set(plot.lines) == {"Euler", "UniPC"}

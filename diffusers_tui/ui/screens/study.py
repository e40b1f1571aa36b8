"""A saved comparison re-opened from history (v): its grid, and its figures drawn in the terminal.

Everything comes from the folder through Engine.read_study (the same data as the saved
figures' CSV and JSON); the files are read and the grid converted in a thread.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Static

from diffusers_tui.engine import UserFacingError, shown
from diffusers_tui.ui.bindings import STUDY_BINDINGS
from diffusers_tui.ui.messages import StudyRead
from diffusers_tui.ui.render import render_strips
from diffusers_tui.ui.widgets.convergence_plot import ConvergencePlot
from diffusers_tui.ui.widgets.lines_plot import LinesPlot
from diffusers_tui.ui.widgets.live_pane import LivePane
from diffusers_tui.ui.widgets.steady_footer import SteadyFooter


class StudyScreen(Screen):
    """The grid and the convergence, schedule and trajectory plots of one saved comparison."""

    DEFAULT_CSS = """
    StudyScreen #study-body { grid-size: 2 2; grid-gutter: 0 1; height: 1fr; }
    StudyScreen #study-status { height: 1; padding: 0 1; background: $boost; }
    StudyScreen ConvergencePlot { border: round $primary-darken-2; }
    """
    BINDINGS = STUDY_BINDINGS

    def __init__(self, engine, folder) -> None:
        super().__init__()
        self.engine = engine
        self.folder = folder
        self.study = None

    def compose(self) -> ComposeResult:
        with Grid(id="study-body"):
            yield LivePane(id="study-grid")
            yield ConvergencePlot(id="study-convergence")
            yield LinesPlot("σ (log) at each step", id="study-schedules")
            yield LinesPlot("L2, each call's x0 to the reference's end, by share of calls",
                            id="study-trajectories")
        yield Static(Text(f"reading {shown(str(self.folder))} ..."), id="study-status")
        yield SteadyFooter()

    def on_mount(self) -> None:
        # After the first layout: the grid's picture is converted to the pane's cell box, known only then.
        self.call_after_refresh(lambda: self.read(self.query_one("#study-grid", LivePane).cell_box))

    @work(thread=True, exclusive=True, group="study-read")
    def read(self, cells) -> None:
        try:
            study = self.engine.read_study(self.folder)
            picture = self.engine.picture(study.grid) if study.grid.exists() else None
        except UserFacingError as error:
            self.post_message(StudyRead(None, None, str(error)))
            return
        pixels = render_strips(picture, cells, self.app.colour_depth) if picture is not None else None
        self.post_message(StudyRead(study, pixels, None))

    def on_study_read(self, message: StudyRead) -> None:
        status = self.query_one("#study-status", Static)
        if message.study is None:
            status.update(Text(f"cannot show this comparison: {shown(message.problem, 300)}"))
            return
        study = self.study = message.study
        self.query_one("#study-grid", LivePane).show(message.pixels, "grid.png")
        self.query_one("#study-convergence", ConvergencePlot).points = study.figures["convergence"]
        self.query_one("#study-schedules", LinesPlot).show(_lines(study.figures["schedules"], "lane", "step", "sigma"))
        self.query_one("#study-trajectories", LinesPlot).show(
            _lines(study.figures["trajectories"], "lane", "fraction", "distance"))
        table = study.table
        axes = " · ".join(f"{place}: {spec}" for place, spec in (table.get("axes") or {}).items()
                          if isinstance(spec, str))
        problems = f" · {len(study.problems)} figure files unreadable: {study.problems[0]}" if study.problems else ""
        status.update(Text(shown(f"{len(study.runs)} runs · seed {table.get('seed')} · {axes or 'samplers x steps'} · "
                                 f"m: next metric · escape: back{problems}", 400)))

    def action_next_metric(self) -> None:
        self.query_one("#study-convergence", ConvergencePlot).next_metric()

    def action_close(self) -> None:
        self.app.pop_screen()


def _lines(rows: list[dict], label: str, x: str, y: str) -> dict[str, list[tuple[float, float]]]:
    lines: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        lines.setdefault(row[label], []).append((row[x], row[y]))
    return lines

"""The history screen (F7): what is in outputs/, newest first, its picture, and its recipe on one key."""

from __future__ import annotations

import threading

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from diffusers_tui.engine import UserFacingError, shown
from diffusers_tui.ui.bindings import HISTORY_BINDINGS
from diffusers_tui.ui.messages import FrameReady, HistoryPage
from diffusers_tui.ui.render import render_strips
from diffusers_tui.ui.widgets.live_pane import LivePane
from diffusers_tui.ui.widgets.steady_footer import SteadyFooter

PROMPT_WIDTH = 48
#: Rows per page of history: the first page is on screen after one block of the index is read.
PAGE_ROWS = 500
#: Rows read without being asked; beyond them, a batch at a time as the cursor comes near the end.
AUTO_ROWS = 5000


def _row(entry) -> tuple[Text, ...]:
    """A table row; every cell is untrusted text from the index, escaped and never read as markup."""
    prompt = shown(entry.prompt.replace("\n", " "), PROMPT_WIDTH * 2)
    prompt = prompt[:PROMPT_WIDTH] + ("…" if len(prompt) > PROMPT_WIDTH else "")
    cells = (entry.time.replace("T", " ")[:16], entry.scheduler or "-", str(entry.steps), str(entry.seed), prompt)
    return tuple(Text(shown(cell, 200)) for cell in cells)


class HistoryScreen(Screen[object]):
    """Dismisses with the chosen HistoryEntry (enter or l), or None (escape)."""

    DEFAULT_CSS = """
    HistoryScreen #history-body { height: 1fr; }
    HistoryScreen #history-table { width: 3fr; }
    HistoryScreen #history-picture { width: 2fr; height: 1fr; }
    HistoryScreen #history-status { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS = HISTORY_BINDINGS

    def __init__(self, engine, outputs_dir: str) -> None:
        super().__init__()
        self.engine = engine
        self.outputs_dir = outputs_dir
        self.entries: list = []
        self.skipped = 0
        self.problem: str | None = None
        self._page_taken = threading.Event()
        self._want_more = threading.Event()
        #: The cursor's row, as the reader thread reads it (it may not touch the widgets).
        self.selected_row = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="history-body"):
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            yield LivePane(id="history-picture")
        yield Static("", id="history-status")
        yield SteadyFooter()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("date", "scheduler", "steps", "seed", "prompt")
        self.query_one("#history-status", Static).update(Text(f"reading {shown(self.outputs_dir)} ..."))
        self.query_one(DataTable).focus()
        self.read_pages()

    @work(thread=True, exclusive=True, group="history-read")
    def read_pages(self) -> None:
        """Read the index from its end in a thread: the newest rows appear at once, the rest fill in."""
        worker = get_current_worker()
        done = HistoryPage([], [], 0, None, done=True)
        for page in self.engine.history_pages(self.outputs_dir, PAGE_ROWS):
            # The table measures every row it is given on the event loop (about 0.15 ms a row, more
            # as it grows): one page in flight at a time, or a reader far ahead would flood it.
            rows = [_row(entry) for entry in page.entries]
            if not self._hand_over(worker, HistoryPage(page.entries, rows, page.skipped, page.problem, done=False)):
                return
            # Past the first screensful, a page is read when the cursor nears the end: a table of
            # 160,000 rows costs the event loop seconds a page, and nobody scrolls that far.
            while len(self.entries) >= AUTO_ROWS and self.selected_row < len(self.entries) - PAGE_ROWS:
                if worker.is_cancelled:
                    return
                self._want_more.wait(0.1)
                self._want_more.clear()
        self._hand_over(worker, done)

    def _hand_over(self, worker, page: HistoryPage) -> bool:
        """Post `page` and wait until the table has taken it; False when the screen closed meanwhile."""
        self._page_taken.clear()
        self.post_message(page)
        while not self._page_taken.wait(0.1):
            if worker.is_cancelled:
                return False
        return True

    def on_history_page(self, page: HistoryPage) -> None:
        table = self.query_one(DataTable)
        self.entries += page.entries
        table.add_rows(page.rows)
        self._page_taken.set()
        self.skipped += page.skipped
        self.problem = page.problem or self.problem
        self._show_status(page.done)

    def _show_status(self, done: bool) -> None:
        skipped = f" · {self.skipped} unreadable lines skipped" if self.skipped else ""
        where = shown(self.outputs_dir)
        if self.problem:
            text = f"cannot read the history: {self.problem}"
        elif self.entries:
            more = "" if done else " so far (more as you scroll down)" if len(self.entries) >= AUTO_ROWS \
                else " so far, reading the rest..."
            text = (f"{len(self.entries)} saved in {where}{more}{skipped} · enter or l loads the recipe · "
                    "v views a comparison · escape closes")
        else:
            text = f"nothing saved in {where} yet: ctrl+s saves a picture{skipped}" if done else f"reading {where} ..."
        self.query_one("#history-status", Static).update(Text(text))

    @property
    def selected(self):
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row is None or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.selected_row = event.cursor_row
        self._want_more.set()
        entry = self.selected
        if entry is not None:
            self.show_picture(entry, self.query_one(LivePane).cell_box)

    @work(thread=True, exclusive=True, group="history-picture")
    def show_picture(self, entry, cells) -> None:
        try:
            picture = self.engine.picture(entry.path)  # a FIFO or a pixel bomb is refused, not read
            caption = f"{entry.path.name} · {entry.model or ''}"
            self.post_message(FrameReady(render_strips(picture, cells, self.app.colour_depth), caption))
        except UserFacingError as error:
            self.post_message(FrameReady(None, str(error)))

    def on_live_pane_resized(self, message: LivePane.Resized) -> None:
        if self.selected is not None:
            self.show_picture(self.selected, message.cells)

    def on_frame_ready(self, message: FrameReady) -> None:
        self.query_one(LivePane).show(message.pixels, message.caption)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_load()  # the table takes enter for itself and reports it as a selection

    def action_load(self) -> None:
        if self.selected is not None:
            self.dismiss(self.selected)

    def action_view_study(self) -> None:
        entry = self.selected
        if entry is None or entry.kind != "comparison":
            self.app.notify("v opens a saved comparison: this row is a single picture", severity="warning")
            return
        from diffusers_tui.ui.screens.study import StudyScreen  # the plotting libraries load here

        self.app.push_screen(StudyScreen(self.engine, entry.path.parent))

    def action_close(self) -> None:
        self.dismiss(None)

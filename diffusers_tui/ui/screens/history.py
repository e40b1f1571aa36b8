"""The history screen (F7): what is in outputs/, newest first, its picture, and its recipe on one key."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from diffusers_tui.ui.messages import FrameReady
from diffusers_tui.ui.render import render_strips
from diffusers_tui.ui.widgets.live_pane import LivePane

PROMPT_WIDTH = 48


class HistoryScreen(Screen[object]):
    """Dismisses with the chosen HistoryEntry (enter or l), or None (escape)."""

    DEFAULT_CSS = """
    HistoryScreen #history-body { height: 1fr; }
    HistoryScreen #history-table { width: 3fr; }
    HistoryScreen #history-picture { width: 2fr; height: 1fr; }
    HistoryScreen #history-status { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS = [
        Binding("enter,l", "load", "Load recipe", id="history.load",
                tooltip="Put this picture's whole recipe into the controls (model, scheduler, steps, seed...)"),
        Binding("escape,f7", "close", "Close", id="history.close", tooltip="Back to the main screen"),
    ]

    def __init__(self, engine, outputs_dir: str) -> None:
        super().__init__()
        self.engine = engine
        self.outputs_dir = outputs_dir
        self.entries: list = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="history-body"):
            yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            yield LivePane(id="history-picture")
        yield Static("", id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        history = self.engine.history(self.outputs_dir)
        self.entries = history.entries
        table = self.query_one(DataTable)
        table.add_columns("date", "scheduler", "steps", "seed", "prompt")
        for entry in self.entries:
            prompt = entry.prompt.replace("\n", " ")
            table.add_row(entry.time.replace("T", " ")[:16], entry.scheduler or "-", str(entry.steps),
                          str(entry.seed), prompt[:PROMPT_WIDTH] + ("…" if len(prompt) > PROMPT_WIDTH else ""))
        skipped = f" · {history.skipped} unreadable lines skipped" if history.skipped else ""
        self.query_one("#history-status", Static).update(
            f"{len(self.entries)} saved in {self.outputs_dir}{skipped} · enter or l loads the recipe · escape closes"
            if self.entries else f"nothing saved in {self.outputs_dir} yet: ctrl+s saves a picture{skipped}")
        table.focus()

    @property
    def selected(self):
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row is None or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        entry = self.selected
        if entry is not None:
            self.show_picture(entry, self.query_one(LivePane).cell_box)

    @work(thread=True, exclusive=True, group="history-picture")
    def show_picture(self, entry, cells) -> None:
        from PIL import Image

        try:
            with Image.open(entry.path) as image:
                picture = image.convert("RGB")
            caption = f"{entry.path.name} · {entry.model or ''}"
            self.post_message(FrameReady(render_strips(picture, cells, self.app.colour_depth), caption))
        except OSError as error:
            self.post_message(FrameReady(None, f"cannot show {entry.path.name}: {error.strerror or error}"))

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

    def action_close(self) -> None:
        self.dismiss(None)

"""The main screen: the settings sidebar, the live pane, the progress line and the log.

It draws what arrives for its own pane (a re-rendered frame, a new pane size), so no
other screen has to stop a message meant for this one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Static

from diffusers_tui.ui.graphics import final_image_class
from diffusers_tui.ui.messages import FrameReady
from diffusers_tui.ui.widgets.live_pane import LivePane
from diffusers_tui.ui.widgets.settings_panel import SettingsPanel

MIN_COLUMNS, MIN_ROWS = 80, 24


def main_layout(model: str, graphics: str) -> ComposeResult:
    """The main screen's widgets. The App composes them (so they exist when the App mounts)."""
    yield Header()
    with Horizontal(id="body"):
        yield SettingsPanel(model, id="settings")
        with Vertical(id="main"):
            yield LivePane(id="pane")
            if graphics != "halfblock":
                yield final_image_class(graphics)(id="final-image")
            yield Static("idle", id="progress")
            yield Log(id="log", max_lines=500)
    yield Static(f"diffusers-tui needs a terminal of at least {MIN_COLUMNS}x{MIN_ROWS}", id="too-small")
    yield Footer()


class MainScreen(Screen):
    """The default screen, holding `main_layout`; the App routes keys to it and runs its generation worker."""

    def on_resize(self) -> None:
        # The App itself is not told of terminal resizes; its default screen is.
        self.check_terminal_size()

    def check_terminal_size(self) -> None:
        """Below the minimum size, show what size is needed instead of a broken layout."""
        width, height = self.app.size
        too_small = width < MIN_COLUMNS or height < MIN_ROWS
        self.set_class(too_small, "-too-small")
        if too_small:
            self.query_one("#too-small", Static).update(
                f"diffusers-tui needs a terminal of at least {MIN_COLUMNS}x{MIN_ROWS}; this one is {width}x{height}")

    def on_live_pane_resized(self, message: LivePane.Resized) -> None:
        self.app.pane_resized(message.cells)

    def on_frame_ready(self, message: FrameReady) -> None:
        self.query_one(LivePane).show(message.pixels, message.caption)

"""Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.widgets import Footer


class SteadyFooter(Footer):
    """A Footer that skips its rebuild when focus moves between widgets with the same keys.

    Textual's Footer recomposes (a FooterKey widget per key, and a layout pass of the screen) on every
    focus change. On the comparison screen tab walks between panes that all have the same keys, and the
    rebuild was most of what a tab cost beside 52 panes.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple | None = None

    def bindings_changed(self, screen) -> None:
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            super().bindings_changed(screen)  # Textual's own: no rebuild here either
            return
        shown = tuple((binding.key, binding.action, binding.description, enabled, tooltip)
                      for _, binding, enabled, tooltip in screen.active_bindings.values() if binding.show)
        if self._bindings_ready and shown == self._shown:
            return
        self._shown = shown  # what the rebuild that follows will show
        super().bindings_changed(screen)

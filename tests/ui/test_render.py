"""Terminal pixels: same picture as rich-pixels draws, fitted to the pane with its aspect."""

import io

import numpy as np
from PIL import Image
from rich.console import Console
from rich.segment import Segment, Segments
from rich_pixels import Pixels

from diffusers_tui.ui.render import fit_pixels, render_strips


def _cells(renderable) -> list[tuple]:
    """(character, style) for every cell a terminal would show; how segments split doesn't matter."""
    console = Console(file=io.StringIO(), color_system="truecolor", width=64)
    return [(character, segment.style.color.get_truecolor(), segment.style.bgcolor.get_truecolor())
            for segment in console.render(renderable) if segment.text != "\n" for character in segment.text]


def test_strips_show_exactly_what_rich_pixels_shows():
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    image.paste((10, 200, 30), (0, 0, 64, 20))  # a flat band, merged into runs by ours
    strips = render_strips(image, (64, 32))
    ours = Segments([segment for strip in strips for segment in [*strip, Segment.line()]])
    assert len(strips) == 32 and all(strip.cell_length == 64 for strip in strips)
    shipped = Pixels.from_image(image)
    assert _cells(ours) == _cells(shipped)
    assert len(list(Console(file=io.StringIO()).render(ours))) < len(list(Console(file=io.StringIO()).render(shipped)))


def test_fit_keeps_the_aspect_ratio_inside_the_cell_box():
    assert fit_pixels((64, 64), (64, 32)) == (64, 64)
    assert fit_pixels((64, 64), (100, 20)) == (40, 40)
    assert fit_pixels((512, 256), (64, 32)) == (64, 32)


async def test_a_new_frame_redraws_only_the_rows_that_changed():
    from textual.app import App

    from diffusers_tui.ui.widgets.live_pane import LivePane

    class PaneApp(App):
        def compose(self):
            yield LivePane()

    image = Image.new("RGB", (64, 64), (20, 40, 200))
    changed = image.copy()
    changed.paste((220, 40, 40), (10, 20, 30, 24))  # pixel rows 20-23: cell rows 10 and 11
    async with PaneApp().run_test(size=(70, 40)) as pilot:
        pane = pilot.app.query_one(LivePane)
        first, second = render_strips(image, (64, 32)), render_strips(changed, (64, 32))
        refreshed = []
        refresh = pane.refresh
        pane.refresh = lambda *regions, **options: (refreshed.append(regions), refresh(*regions, **options))
        pane.show(first)
        assert refreshed[-1] == ()  # the first frame: everything
        top = pane._top(32)
        pane.show(second)
        assert [region.y for region in refreshed[-1]] == [top + 10, top + 11]
        assert pane._drawn == second
        pane.show(render_strips(image, (32, 16)))
        assert refreshed[-1] == ()  # new size: everything

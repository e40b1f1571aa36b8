"""256-colour terminals: frames dithered to xterm's palette beat the terminal library's cell-by-cell quantising."""

import numpy as np
import pytest
from PIL import Image
from rich.color import Color, ColorSystem
from scipy.ndimage import uniform_filter

from diffusers_tui.engine import GenerationRequest
from diffusers_tui.ui import cells, render


def _gradient() -> Image.Image:
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None]
    pixels[..., 2] = np.linspace(255, 0, 64, dtype=np.uint8)[:, None]
    pixels[..., 1] = 60
    return Image.fromarray(pixels)


def _quantised(image) -> np.ndarray:
    """What Rich sends a 256-colour terminal for each truecolor cell, as RGB."""
    rgb = np.asarray(image, dtype=np.int64)
    return np.array([[Color.from_rgb(*pixel).downgrade(ColorSystem.EIGHT_BIT).get_truecolor() for pixel in row]
                     for row in rgb])


def _dithered(image) -> np.ndarray:
    return np.array(cells.XTERM_PALETTE)[cells.dither_to_xterm(image) - 16]


def _seen_error(shown, image) -> float:
    """Mean error of 3x3 neighbourhoods: the eye averages cells this small."""
    true = np.asarray(image, dtype=float)
    return float(np.abs(uniform_filter(shown.astype(float), (3, 3, 1)) - uniform_filter(true, (3, 3, 1))).mean())


@pytest.fixture(scope="module")
def demo_image(request):
    engine = request.getfixturevalue("engine")
    return engine.run(GenerationRequest(prompt="a red circle on a blue background", seed=3, steps=12,
                                        preview_method="none")).image


@pytest.mark.parametrize("which", ["gradient", "demo"])
def test_dithered_cells_are_closer_to_the_picture_than_quantised_ones(which, demo_image):
    image = _gradient() if which == "gradient" else demo_image.convert("RGB")
    dithered, quantised = _seen_error(_dithered(image), image), _seen_error(_quantised(image), image)
    assert dithered < quantised / 2, (dithered, quantised)


def test_a_256_colour_terminal_gets_palette_numbers_and_the_log_says_how_to_get_24_bit():
    assert render.colour_depth_for("256") == render.colour_depth_for("standard") == "256"
    assert "COLORTERM=truecolor" in " ".join(render.colour_depth_note("256"))
    strips = render.render_strips(_gradient(), (64, 32), "256")
    colours = {segment.style.color for strip in strips for segment in strip}
    assert colours and all(colour.number is not None and 16 <= colour.number <= 255 for colour in colours)
    assert render.colour_depth_note("truecolor") == ["colours: 24-bit (truecolor)"]


async def test_the_app_renders_at_the_depth_its_terminal_has(make_app):
    from tests.waiting import model_loaded, run_finished

    app = make_app("demo")  # Textual's test terminal reports "standard" colours: frames are dithered
    async with app.run_test(size=(120, 40)) as pilot:
        await model_loaded(pilot, app)
        depth = app.colour_depth
        assert depth == render.colour_depth_for(app.console.color_system)
        assert any(line.startswith("colours: ") for line in app.log_lines)
        await pilot.press("ctrl+g")
        await run_finished(pilot, app)
        colours = {segment.style.color for strip in app.query_one("#pane").strips for segment in strip}
        eight_bit = {colour.number is not None for colour in colours}
        assert eight_bit == ({True} if depth == "256" else {False})

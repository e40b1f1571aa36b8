"""ui.link: the link's rate learnt from writes that wait, and the live pane drawing in bands a slow link takes."""

from __future__ import annotations

import pytest
from PIL import Image

from diffusers_tui.ui.link import FULL_BUFFER_BYTES, UNKNOWN_WAIT_S, LinkMeter
from diffusers_tui.ui.render import render_strips


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _write_through_a_link(meter: LinkMeter, clock: Clock, rate: float, pieces: int) -> None:
    """A pty read at `rate`: each 4 KB piece waits for the reader, then two more fit at once (as a pty
    wakes its writer only once several KB are free)."""
    for index in range(pieces):
        size = 4096
        meter.enqueued(size)
        started = clock.now
        if index % 3 == 0:
            clock.now += 3 * size / rate  # the wait for three pieces' room
        meter.wrote(size, started, clock.now)


def test_the_rate_is_what_the_terminal_took_between_two_full_buffers():
    clock = Clock()
    meter = LinkMeter(clock)
    assert meter.rate is None and meter.wait_s() == 0.0
    _write_through_a_link(meter, clock, 50_000, 58)  # the last piece waits
    assert meter.rate == pytest.approx(50_000, rel=0.05)
    # Just after a waiting piece the terminal holds a full buffer: that long for new output to wait.
    assert meter.wait_s() == pytest.approx(FULL_BUFFER_BYTES / meter.rate, rel=0.05)
    clock.now += 0.5
    assert meter.wait_s() == 0.0 and meter.rate is not None  # drained since
    clock.now += 1.0
    meter.wait_s()
    assert meter.rate is None  # unconfirmed for longer than FORGET_S: forgotten


def test_quick_writes_say_nothing_of_the_rate_but_output_piling_up_is_waited_for():
    clock = Clock()
    meter = LinkMeter(clock)
    for _ in range(100):
        meter.enqueued(4096)
        meter.wrote(4096, clock.now, clock.now + 0.0001)
        clock.now += 0.01
    assert meter.rate is None and meter.wait_s() == 0.0
    meter.enqueued(30_000)  # handed to the writer, not written yet
    assert meter.wait_s() == UNKNOWN_WAIT_S


def test_pieces_with_the_writer_idle_between_them_do_not_measure_the_link():
    clock = Clock()
    meter = LinkMeter(clock)
    for _ in range(20):
        started = clock.now
        clock.now += 0.01  # each piece waits...
        meter.wrote(4096, started, clock.now)
        clock.now += 0.5  # ...but the writer then idles: the reader took an unknown amount meanwhile
    assert meter.rate is None


async def test_over_a_slow_link_the_pane_draws_a_frame_in_bands_and_the_newest_frame_wins():
    from textual.app import App

    from diffusers_tui.ui.widgets import live_pane
    from diffusers_tui.ui.widgets.live_pane import LivePane

    link = {"rate": 20_000.0, "wait": 0.0}

    class SlowLinkApp(App):
        def compose(self):
            yield LivePane()

        def output_rate(self):
            return link["rate"]

        def output_wait_s(self):
            return link["wait"]

    def picture(colour):
        image = Image.new("RGB", (64, 64), colour)
        return render_strips(image, (64, 32))

    async with SlowLinkApp().run_test(size=(70, 40)) as pilot:
        pane = pilot.app.query_one(LivePane)
        pane.show(picture((0, 0, 200)))  # the first frame: whole
        assert pane._drawn == pane.strips and not pane._pending
        second = picture((200, 0, 0))
        pane.show(second)
        # 20 KB/s for BAND_S: a band of a few 64-cell rows, the rest left for later.
        allowed_rows = int(20_000 * live_pane.BAND_S // (10 + 25 * 64))
        drawn = [y for y in range(32) if pane._drawn[y] is second[y]]
        assert drawn == list(range(max(1, allowed_rows)))
        link["wait"] = 60.0  # the link looks far behind: nothing more for now...
        await pilot.pause(0.1)
        assert [y for y in range(32) if pane._drawn[y] is second[y]] == drawn
        await pilot.pause(live_pane.MAX_HOLD_S + 0.2)  # ...but never held for long: a band goes out anyway
        assert len([y for y in range(32) if pane._drawn[y] is second[y]]) > len(drawn)
        third = picture((0, 200, 0))
        pane.show(third)  # newer: the rows still to draw come from it
        assert not any(pane._drawn[y] is third[y] for y in range(32))
        link["wait"], link["rate"] = 0.0, None  # caught up, and fast again
        await pilot.pause(1.2)
        assert pane._drawn == third and not pane._pending

"""Live previews: decoded in their own thread, at most fps a second, the newest step winning, method switchable."""

import threading
import time

from diffusers_tui.engine import GenerationRequest, LivePreview
from diffusers_tui.engine.preview.live import next_frame_due


def _request(model, steps, method="latent"):
    return GenerationRequest(prompt="a red square", model=str(model), scheduler="Euler", steps=steps, seed=2,
                             preview_method=method)


def test_frames_are_decoded_off_the_step_loop_at_the_frame_cap(engine, tiny_sd):
    frames, threads = [], set()
    step_thread = threading.current_thread().name

    def on_frame(lane, snapshot):
        threads.add(threading.current_thread().name)
        frames.append(snapshot)

    live = LivePreview(on_frame, fps=4)
    started = time.perf_counter()
    result = engine.run(_request(tiny_sd, 40), live=live, on_step=lambda s: time.sleep(0.02))
    elapsed = time.perf_counter() - started
    assert threads == {"live-preview"} and step_thread not in threads
    assert 1 <= len(frames) <= elapsed * 4 + 1 < len(result.frames)
    assert all(frame.preview is not None and frame.preview.size == (8, 8) for frame in frames)
    assert [frame.step for frame in frames] == sorted({frame.step for frame in frames})


def test_the_next_frame_waits_until_this_ones_work_is_within_its_share():
    assert next_frame_due(10.0, busy=0.001, interval=0.1, max_share=0.02) == 10.1  # cheap: the frame cap rules
    assert next_frame_due(10.0, busy=0.01, interval=0.1, max_share=0.02) == 10.5  # 10 ms is 2% of 0.5 s


def test_frames_that_cost_processor_time_come_less_often_and_stay_within_their_share(engine, tiny_sd):
    """A consumer that spends 20 ms of processor time on each frame, at a cap of 60 frames a second and a
    share of 10%: frames come at most every 0.2 s, so the frames' time stays within a tenth of the run
    (give or take the last frame)."""
    def costly(lane, snapshot):
        spent = time.thread_time()
        while time.thread_time() - spent < 0.02:
            pass

    live = LivePreview(costly, fps=60, max_share=0.1)
    started = time.perf_counter()
    engine.run(_request(tiny_sd, 40), live=live, on_step=lambda s: time.sleep(0.02))
    elapsed = time.perf_counter() - started
    assert live.frames >= 1 and live.busy_s / live.frames >= 0.02
    assert live.busy_s <= 0.1 * elapsed + live.busy_s / live.frames
    assert live.frames < elapsed * 60 / 2  # far fewer than the frame cap alone lets through


def test_a_slow_consumer_gets_the_newest_step_not_a_backlog(engine, tiny_sd):
    delivered = []

    def slow(lane, snapshot):
        time.sleep(0.15)
        delivered.append(snapshot.step)

    engine.run(_request(tiny_sd, 30), live=LivePreview(slow, fps=60), on_step=lambda s: time.sleep(0.01))
    gaps = [b - a for a, b in zip(delivered, delivered[1:])]
    assert delivered and max(gaps, default=2) > 1  # steps were skipped: the newest won


def test_a_method_change_applies_from_the_next_frame(engine, tiny_sd):
    sizes = []
    live = LivePreview(lambda lane, snapshot: sizes.append(snapshot.preview.size), fps=50, method="latent")

    def on_step(snapshot):
        if snapshot.step == 10:
            live.method = "vae"  # as the app's settings panel does, from another thread
        time.sleep(0.03)

    engine.run(_request(tiny_sd, 20), live=live, on_step=on_step)
    assert sizes[0] == (8, 8) and sizes[-1] == (16, 16)
    assert sizes == sorted(sizes)  # latent frames first, then full decodes only


def test_records_are_copies_that_the_run_never_changes(engine, tiny_sd):
    result = engine.run(_request(tiny_sd, 4))
    first = result.frames[0].latents
    assert first.of("x0").data_ptr() != result.frames[1].latents.of("x0").data_ptr()
    again = engine.run(_request(tiny_sd, 4))
    assert (again.frames[0].latents.of("noisy") == first.of("noisy")).all()


def test_on_the_cpu_taesd_frames_come_from_the_decoders_own_process_and_match():
    import numpy as np

    from diffusers_tui.engine import Engine

    engine = Engine()
    decoders = engine.loaded_model("demo").decoders
    process = decoders.process
    assert process is not None and process.wait_until_started(120)
    result = engine.run(GenerationRequest(prompt="a red circle on a blue background", steps=6, seed=4))
    there = np.asarray(engine.preview(result.frames[2], "taesd"), dtype=int)
    decoders._cache.clear()
    decoders.process = None  # the same frame decoded in this process
    here = np.asarray(engine.preview(result.frames[2], "taesd"), dtype=int)
    assert there.shape == (64, 64, 3) and np.abs(there - here).max() <= 1
    process.close()
    assert process._process.poll() is not None  # the child has gone


def test_finish_does_not_wait_for_a_decode_and_nothing_is_delivered_after_it(engine, tiny_sd):
    """A decode under way when the run ends is dropped: the run does not wait for it, and no frame comes late."""
    decoders = engine.loaded_model(str(tiny_sd)).decoders
    started, release = threading.Event(), threading.Event()
    original = decoders.image

    def slow_image(record, kind, method=None):
        started.set()
        release.wait(5)
        return original(record, kind, method)

    delivered = []
    live = LivePreview(lambda lane, snapshot: delivered.append(snapshot.step), fps=60)
    decoders.image = slow_image
    try:
        live.start("latent")
        result = engine.run(_request(tiny_sd, 2))
        live.offer(result.frames[-1])
        assert started.wait(5)
        began = time.perf_counter()
        live.finish()  # the decode is still blocked
        assert time.perf_counter() - began < 1
        release.set()
        live.join(5)
    finally:
        decoders.image = original
    assert delivered == []

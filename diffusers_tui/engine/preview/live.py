"""Live previews off the step loop: a thread that decodes the newest recorded step, at a frame cap.

The step loop only offers each step's record, which never waits. This thread wakes at
most `fps` times a second, takes the newest step of each lane (older ones are skipped:
the newest wins), decodes it by the current method and hands it to the consumer. The
method may be changed from any thread while a run goes on; it applies from the next frame.

On the CPU, frames also never take more than `max_share` of the processor time: the thread's
own work (a decode, and the consumer's conversion to cells) then competes with the model for
the interpreter lock and the cores, so the frame rate drops instead of the run slowing down.
On a GPU the step loop mostly waits on the device, and frames keep the `fps` cap.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

#: The share of the processor time that frames may take at most (see the module's docstring): the run
#: watched in the app stays within 3% of the run unwatched (benchmarks/preview_overhead.py), decodes included.
MAX_SHARE = 0.02


def next_frame_due(started: float, busy: float, interval: float, max_share: float) -> float:
    """When the next frame may start: one frame interval after this one started, and late enough that this
    frame's processor time `busy` is at most `max_share` of the time from its start to the next's."""
    return started + max(interval, busy / max_share)


class LivePreview:
    """Hands `on_frame(lane, snapshot)` decoded frames (snapshot.preview set) while a run goes on.

    `method` None follows the request's preview_method. One LivePreview serves one run
    (or one comparison: its lanes share the frame cap, served oldest-waiting first).
    """

    def __init__(self, on_frame: Callable[[int, object], None], fps: float = 15.0, method: str | None = None,
                 max_share: float = MAX_SHARE):
        if not fps > 0:
            raise ValueError("fps must be above 0")
        if not 0 < max_share <= 1:
            raise ValueError("max_share must be above 0 and at most 1")
        self.on_frame = on_frame
        self.fps = float(fps)
        self.max_share = float(max_share)
        #: Frames delivered, and the processor time this thread spent on them (seconds).
        self.frames = 0
        self.busy_s = 0.0
        self.method = method
        self._pending: dict[int, object] = {}
        self._wake = threading.Condition()
        #: Held while a frame is handed to the consumer: finish() waits for a delivery, never for a decode.
        self._delivering = threading.Lock()
        self._closing = False
        self._idle = False
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._request_method: str | None = None
        self._share_capped = True

    def start(self, request_method: str | None, on_cpu: bool = True) -> None:
        """Start the thread; `on_cpu`: the model runs on the CPU, so frames keep within `max_share`."""
        self._request_method = request_method
        self._share_capped = on_cpu
        self._thread = threading.Thread(target=self._loop, name="live-preview", daemon=True)
        self._thread.start()

    def offer(self, snapshot, lane: int = 0) -> None:
        """The step loop's side: keep `snapshot` as the lane's newest; returns at once."""
        with self._wake:
            self._pending[lane] = snapshot
            # Woken only when idle: waiting for its next frame time, it takes the newest then
            # anyway, and waking it every step costs the step loop the interpreter lock.
            if self._idle:
                self._wake.notify()

    def finish(self) -> None:
        """Stop: no frame is delivered once this returns, and what is waiting is dropped.

        A frame being decoded is dropped too, without waiting for its decode: the run's own
        picture replaces it (waiting added up to a decode to the end of every run). A frame
        being handed over is waited for. Re-raises what a decode or the consumer raised.
        """
        with self._wake:
            self._closing = True
            self._wake.notify()
        with self._delivering:
            pass  # a delivery under way ends; the thread sees _closing before any other
        if self._failure is not None:
            raise self._failure

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (tests): after finish(), it ends once a decode under way does."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        interval = 1.0 / self.fps
        next_due = 0.0
        while True:
            with self._wake:
                while True:
                    if self._closing:
                        return
                    wait = next_due - time.perf_counter()
                    if self._pending and wait <= 0:
                        break
                    self._idle = not self._pending
                    self._wake.wait(wait if self._pending else None)
                    self._idle = False
                lane = next(iter(self._pending))  # the lane that has waited longest
                snapshot = self._pending.pop(lane)
            started, started_busy = time.perf_counter(), time.thread_time()
            try:
                record = snapshot.latents
                image = record.decoders.image(record, snapshot.preview_kind, self.method or self._request_method)
                with self._delivering:
                    if self._closing:
                        return
                    self.on_frame(lane, dataclasses.replace(snapshot, preview=image))
                # This thread's processor time, not the wall time: waiting for a decoder process or for
                # the interpreter lock costs the step loop nothing.
                busy = time.thread_time() - started_busy
                self.frames += 1
                self.busy_s += busy
                next_due = next_frame_due(started, busy, interval, self.max_share if self._share_capped else 1.0)
            except BaseException as error:  # noqa: BLE001 - reported to the run by finish()
                self._failure = error
                with self._wake:
                    self._pending.clear()
                return

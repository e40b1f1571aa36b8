"""How fast the terminal takes the app's output, learnt from the writes that wait, so frames can yield to keys.

A pseudo-terminal holds about 19 KB that its reader (a terminal, sshd) has not taken yet, and reports
none of it to the writer (TIOCOUTQ on a pty answers 0; select() calls a pty writable while any room is
left). Over a slow link that buffer fills, and a key's echo waits behind it: at 200 KB/s a full buffer
is 95 ms. What the app can see is its own writes, in 4 KB pieces: one that waits ends with the
terminal's buffer full, and between the ends of two such pieces, written back to back, the terminal
took exactly what was written in between. That is the link's rate. With it, what was written less what
the link has taken since says how long new output would wait; the live pane sends its rows in bands
that keep that short.

On a fast terminal no write waits, the rate stays unknown, and nothing is held back.
"""

from __future__ import annotations

import os
import threading
import time

from textual.drivers.linux_driver import LinuxDriver

#: A piece of output written at a time (a blocked piece measures the link).
PIECE_BYTES = 4096
#: What `wait_s` says while output waits for a writer whose link has not been measured yet.
UNKNOWN_WAIT_S = 0.05
#: A piece that takes longer than this waited for the terminal. An unhindered 4 KB write takes microseconds,
#: though the writer may then wait a millisecond or two for the interpreter lock; over a link slow enough
#: to matter (under about 400 KB/s) a piece that waits for the terminal takes 10 ms or more.
BLOCKED_S = 0.005
#: A rate not confirmed by a waiting piece for this long is forgotten: the link, or the machine's load
#: that made a write look slow, may have changed.
FORGET_S = 1.0
#: Pieces closer than this are back to back: the writer was busy between them.
CONTIGUOUS_S = 0.002
#: The shortest stretch of waiting pieces that measures the link (a terminal reads in bursts).
RATE_WINDOW_S = 0.05
#: What the terminal side is taken to hold when a write had to wait: a pty's buffer.
FULL_BUFFER_BYTES = 19_000


class LinkMeter:
    """The terminal's drain rate and the output not yet taken, as far as the writes tell."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: Bytes a second the terminal took while writes waited (None: no write has waited).
        self.rate: float | None = None
        #: Bytes handed to the writer and not yet written, and bytes written and taken to be still in the
        #: terminal's buffer (drained at `rate`).
        self.queued = 0
        self._buffered = 0.0
        self._since = clock()
        #: Back-to-back pieces since one that waited: since when, the bytes written since, and when the
        #: last one ended.
        self._window: tuple[float, int, float] | None = None
        #: When the last piece that waited ended.
        self._last_wait = clock()

    def enqueued(self, size: int) -> None:
        with self._lock:
            self.queued += size

    def wrote(self, size: int, started: float, ended: float) -> None:
        """`size` bytes were written to the terminal between `started` and `ended` (monotonic seconds)."""
        with self._lock:
            self._drain()
            self.queued = max(0, self.queued - size)
            waited = ended - started >= BLOCKED_S
            window = self._window
            if window is not None and started - window[2] > CONTIGUOUS_S:
                window = None  # the writer stopped: what the terminal took meanwhile is unknown
            if not waited:
                self._buffered += size
                self._window = None if window is None else (window[0], window[1] + size, ended)
                return
            self._last_wait = ended
            # A piece that waited ends with the terminal's buffer full. Between the ends of two of them,
            # the writer busy all along, the terminal took exactly what was written in between, however
            # it reads (a pty wakes its writer only once several KB are free).
            self._buffered = FULL_BUFFER_BYTES
            if window is None:
                self._window = (ended, 0, ended)
                return
            since, taken, _ = window
            taken += size
            if ended - since >= RATE_WINDOW_S:
                sample = taken / (ended - since)
                self.rate = sample if self.rate is None else 0.6 * self.rate + 0.4 * sample
                self._window = (ended, 0, ended)
            else:
                self._window = (since, taken, ended)

    def wait_s(self) -> float:
        """Seconds new output would wait behind what is not yet taken. While the rate is unknown: 0 if the
        writer has caught up, else UNKNOWN_WAIT_S (output piling up is the first sign of a slow link)."""
        with self._lock:
            if self.rate is not None and self._clock() - self._last_wait > FORGET_S and not self.queued:
                self.rate, self._buffered = None, 0.0
            if self.rate is None:
                return UNKNOWN_WAIT_S if self.queued > 0 else 0.0
            self._drain()
            return (self._buffered + self.queued) / self.rate

    def bytes_per_s(self) -> float | None:
        return self.rate

    def _drain(self) -> None:
        now = self._clock()
        if self.rate is not None:
            self._buffered = max(0.0, self._buffered - self.rate * (now - self._since))
        self._since = now


class MeteredFile:
    """The driver's output file, written in pieces whose waits feed a LinkMeter."""

    def __init__(self, file, meter: LinkMeter) -> None:
        self._file, self.meter = file, meter
        self._fd = file.fileno()
        self._flushed = False

    def write(self, text: str) -> None:
        if not self._flushed:  # anything the text layer still holds goes first
            self._file.flush()
            self._flushed = True
        data = text.encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            started = time.monotonic()
            written = os.write(self._fd, view[:PIECE_BYTES])
            self.meter.wrote(written, started, time.monotonic())
            view = view[written:]

    def flush(self) -> None:
        return  # every write went straight to the terminal

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return self._file.isatty()


class MeteredLinuxDriver(LinuxDriver):
    """Textual's Linux driver with its output metered (LinkMeter) and counted in as it is queued."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.link = LinkMeter()
        # Textual's writer thread writes to this file; metered, it tells the app how fast the link is.
        self._file = MeteredFile(self._file, self.link)

    def write(self, data: str) -> None:
        self.link.enqueued(len(data.encode("utf-8", "replace")))
        super().write(data)

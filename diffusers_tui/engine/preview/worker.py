"""A TAESD decoder in a process of its own, for runs on the CPU.

A small model's step loop and a tiny decoder both spend much of their time in Python, so
a decoder thread in the same process waits on the step loop for the interpreter lock and
the two run one after the other: on the demo a thread decoding 15 frames a second slowed
the run by 5%, the same decodes in another process by 1.4%. The child is started as
`python -m diffusers_tui.engine.preview.worker FOLDER` (not with multiprocessing, whose
spawn re-imports the caller's main script) when the model loads; it imports torch (2-3
s), loads the decoder and says "ready". Until then, and if it ever fails, frames are
decoded in the calling thread as before. Over its stdin/stdout: a latent goes in as a
shape header and float32 bytes, RGB bytes come back the same way.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading

import numpy as np

READY = b"ready\n"
_HEADER = struct.Struct("<3i")


def _read_exactly(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the decoder process closed its pipe")
    return data


def _serve(folder: str) -> None:
    """The child: load the decoder, say so, then decode each latent it is sent until its input ends."""
    import torch

    torch.set_num_threads(1)  # one core: the run has the others
    from diffusers import AutoencoderTiny
    from diffusers.utils import logging

    from diffusers_tui.engine.preview.tiny import tiny_decode

    logging.set_verbosity_error()
    tiny = AutoencoderTiny.from_pretrained(folder).eval()
    # Traced and frozen, a frame costs a quarter less (the demo's: 1.8 ms against 2.4): every
    # millisecond here is taken from a 2-core machine's step loop.
    try:
        with torch.inference_mode():
            example = torch.zeros((1, tiny.config.latent_channels, 16, 16))
            decoder = torch.jit.freeze(torch.jit.trace(tiny.decoder, example, check_trace=False))
    except Exception:  # noqa: BLE001 - a decoder that does not trace is used as it is
        decoder = None
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sink.write(READY)
    sink.flush()
    with torch.inference_mode():
        while True:
            try:
                shape = _HEADER.unpack(_read_exactly(source, _HEADER.size))
            except EOFError:
                return
            latent = np.frombuffer(_read_exactly(source, 4 * shape[0] * shape[1] * shape[2]), dtype=np.float32)
            image = tiny_decode(tiny, torch.from_numpy(latent.reshape(shape).copy()), decoder).float().clamp(-1, 1)
            pixels = ((image + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
            sink.write(_HEADER.pack(*pixels.shape) + pixels.tobytes())
            sink.flush()


class DecoderProcess:
    """Decodes (C, h, w) latents with the TAESD in `folder`, in a child process; thread-safe."""

    def __init__(self, folder):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "diffusers_tui.engine.preview.worker", str(folder)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._lock = threading.Lock()
        self._ready = False
        self.failed = False
        self._started = threading.Event()
        # Waiting for "ready" in a thread of its own: nothing else ever waits for the child's start.
        threading.Thread(target=self._await_ready, name="taesd-decoder-start", daemon=True).start()

    def _await_ready(self) -> None:
        try:
            self._ready = self._process.stdout.readline() == READY
        except (OSError, ValueError):
            pass
        self.failed = not self._ready
        self._started.set()

    def wait_until_started(self, timeout: float) -> bool:
        """For benchmarks and tests: wait up to `timeout` s for the child; True when it is ready."""
        self._started.wait(timeout)
        return self.ready

    @property
    def ready(self) -> bool:
        """True once the child has loaded its decoder (never waits)."""
        return self._ready and not self.failed

    def decode(self, latent) -> np.ndarray | None:
        """(H, W, 3) uint8 pixels of a (C, h, w) CPU latent, or None when the child is gone."""
        array = np.ascontiguousarray(latent.float().numpy(), dtype=np.float32)
        with self._lock:
            try:
                self._process.stdin.write(_HEADER.pack(*array.shape) + array.tobytes())
                self._process.stdin.flush()
                height, width, channels = _HEADER.unpack(_read_exactly(self._process.stdout, _HEADER.size))
                pixels = _read_exactly(self._process.stdout, height * width * channels)
            except (EOFError, OSError, ValueError):
                self.failed = True
                return None
        return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, channels)

    def close(self) -> None:
        """Stop the child (its input ends), killing it if it does not go at once."""
        try:
            self._process.stdin.close()
            self._process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()  # reaped, so no zombie is left (a busy machine can take over 2 s to exit)


if __name__ == "__main__":
    _serve(sys.argv[1])

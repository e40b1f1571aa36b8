"""One loaded model's preview methods: turning recorded latents into pictures, and which "auto" is.

Methods, named as ComfyUI names them, least to most faithful: `latent` (a linear map at
latent resolution), `taesd` (a tiny AutoencoderTiny decoder, full size), `vae` (the
model's own full decode). `auto` is the most faithful one whose cost a frame, measured at
load, fits FRAME_BUDGET_MS. A pixel-space model needs none: its sample is the picture.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from collections import OrderedDict

import torch

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.preview import latent as latent_maps
from diffusers_tui.engine.preview import tiny as tiny_decoders
from diffusers_tui.engine.preview.images import tensor_to_image
from diffusers_tui.engine.preview.vae import latent_channels, vae_decode

METHODS = ("latent", "taesd", "vae")
#: Names older recipes and settings used.
ALIASES = {"linear": "latent"}
#: A frame may cost this much for `auto` to pick it: at the default cap of 15 frames a
#: second, 15% of one thread's time, on a thread beside the step loop.
FRAME_BUDGET_MS = 10.0
#: Decoded pictures kept for scrubbing back and forth.
CACHE_SIZE = 64
#: On a CPU, a full decode is timed on a latent at most this many cells a side and
#: scaled by area: timing SD 1.5's 64x64 latent would add 23 s to every load.
CPU_PROBE_SIDE = 16


def _timed_ms(decode, latent: torch.Tensor, device) -> float:
    """The fastest of a few decodes: what a frame costs when the machine is not also busy elsewhere
    (a load often runs beside other work; the mean of a busy moment once priced the demo's 2 ms
    decoder at 9 ms)."""
    decode(latent)  # the first call allocates and picks kernels: not timed
    best = math.inf
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        decode(latent)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best * 1000


class Decoders:
    """Turns a model's recorded latents into pictures by each method; safe to use from any thread."""

    def __init__(self, *, family: str, device, vae=None, tiny=None, latent_map=None, fit_size=None,
                 notes: list[str] | None = None):
        self.family = family
        self.device = device
        self.vae = vae
        self.tiny = tiny
        self._latent_map = latent_map
        self._fit_size = fit_size
        self.pixel = vae is None
        self.auto = "pixels" if self.pixel else "latent"
        #: Measured milliseconds a frame, by method (what "auto" was picked from).
        self.costs: dict[str, float] = {}
        self._lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._stream = None
        #: On the CPU, the TAESD decoder's own process (preview.worker), once started.
        self.process = None
        #: What choosing and fitting found worth saying: the loaded model's own notes list.
        self.notes: list[str] = notes if notes is not None else []

    # ----- which method -----
    @property
    def methods(self) -> tuple[str, ...]:
        if self.pixel:
            return ()
        return tuple(m for m in METHODS if m != "taesd" or self.tiny is not None)

    def resolve(self, method: str | None) -> str:
        """The concrete method a request's `preview_method` means on this model."""
        if self.pixel:
            return "pixels"
        method = ALIASES.get(method, method)
        if method in (None, "auto"):
            return self.auto
        if method not in self.methods:
            raise RequestError("preview_method", f"there is no TAESD decoder for this model: {self.fetch_note()}; "
                                                 "or use latent, vae or auto")
        return method

    def fetch_note(self) -> str:
        """How to give this model a TAESD decoder ("" when it has one or needs none)."""
        if self.pixel or self.tiny is not None:
            return ""
        hint = tiny_decoders.fetch_hint(self.family)
        fetch = f"`{hint}` fetches one, or " if hint else ""
        return f"{fetch}name a TAESD folder in the taesd_folder setting (or --taesd-folder)"

    def choose_auto(self, native_latent: tuple[int, int, int]) -> None:
        """Measure each method's cost a frame and make `auto` the most faithful that fits the budget."""
        if self.pixel:
            return
        channels, height, width = native_latent
        side = (height, width) if self.device.type == "cuda" else (min(height, CPU_PROBE_SIDE), min(width, CPU_PROBE_SIDE))
        probe = torch.randn((channels, *side), generator=torch.Generator().manual_seed(0))
        scale = (height * width) / (side[0] * side[1])
        if self.tiny is not None:
            self.costs["taesd"] = self.measure("taesd", probe) * scale
        # A full decode costs more than the tiny one: time it only when the tiny one fits.
        if self.costs.get("taesd", 0.0) <= FRAME_BUDGET_MS:
            self.costs["vae"] = self.measure("vae", probe) * scale
        fits = [m for m in ("vae", "taesd") if self.costs.get(m, math.inf) <= FRAME_BUDGET_MS]
        self.auto = fits[0] if fits else "latent"
        measured = ", ".join(f"{m} {ms:.1f} ms" for m, ms in sorted(self.costs.items(), key=lambda kv: kv[1]))
        self.notes.append(f"previews: auto is {self.auto} (a frame: {measured or 'not measured'}; "
                          f"budget {FRAME_BUDGET_MS:g} ms)")
        if self.tiny is None:
            hint = tiny_decoders.fetch_hint(self.family)
            if hint:
                self.notes.append(f"no TAESD preview decoder found for this {self.family} model: `{hint}` "
                                  "gives full-size live previews at a fraction of a full decode's cost")
        if self.auto == "latent":
            self.latent_map()  # fitted now, so its note says how far off it is before the first run

    def measure(self, method: str, latent: torch.Tensor) -> float:
        """Milliseconds one decode of `latent` by `method` takes here."""
        return _timed_ms(lambda z: self.tensor(z, method), latent, self.device)

    def latent_map(self) -> latent_maps.LatentPreviewer:
        """The linear map, fitted on first use for a VAE without a published one."""
        with self._lock:
            if self._latent_map is None:
                fitted = latent_maps.fit_latent_map(self.vae, self._fit_size)
                verdict = ("good enough for previews" if fitted.trustworthy else
                           f"above {latent_maps.GOOD_FIT_ERROR}: latent previews' colours are approximate")
                self.notes.append(f"latent preview map fitted from {latent_maps.FIT_IMAGES} VAE decodes: RMS error "
                                  f"{fitted.fit_error:.3f} against a full decode ({verdict})")
                self._latent_map = fitted
            return self._latent_map

    # ----- pictures -----
    def tensor(self, latent: torch.Tensor, method: str) -> torch.Tensor:
        """(C, h, w) latent -> (3, H, W) image in [-1, 1] by a concrete method."""
        with torch.inference_mode():
            if method == "pixels":
                return latent
            if method == "vae":
                return vae_decode(self.vae, latent)
            if method == "taesd":
                return tiny_decoders.tiny_decode(self.tiny, latent)
            return self.latent_map().decode(latent)

    def image(self, record, kind: str, method: str | None = None):
        """The picture of one recorded step (StepLatents) by `method`; decoded once, then cached."""
        method = self.resolve(method)
        key = (id(record), kind, method)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key][1]
        pixels = self._decoded_elsewhere(record.of(kind), method)
        if pixels is not None:
            from PIL import Image

            image = Image.fromarray(pixels)
        else:
            with self._side_stream():
                image = tensor_to_image(self.tensor(record.of(kind), method))
        with self._lock:
            self._cache[key] = (record, image)  # the record is kept too, so its id is not reused
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return image

    def _decoded_elsewhere(self, latent: torch.Tensor, method: str):
        """Pixels from the decoder process (see preview.worker), or None to decode here."""
        if method != "taesd" or self.process is None or not self.process.ready:
            return None
        return self.process.decode(latent)

    def _side_stream(self):
        """On CUDA, a stream of the decoders' own (as ComfyUI decodes), so a decode and the
        picture's copy back wait for each other only, not for the run's queued steps."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        with self._lock:
            if self._stream is None:
                self._stream = torch.cuda.Stream(self.device)
        return torch.cuda.stream(self._stream)

    def full(self, record, kind: str):
        """The full-resolution picture of a recorded step: what snapshots and exports save."""
        return self.image(record, kind, "pixels" if self.pixel else "vae")


def decoders_for(loaded, taesd_folder: str | None = None) -> Decoders:
    """Build a loaded model's Decoders, choose `auto`, and add what was found to its notes."""
    if loaded.pipeline is None:
        return Decoders(family="pixel", device=loaded.device)
    vae = loaded.pipeline.vae
    family = latent_maps.detect_family(vae)
    folder = tiny_decoders.find_tiny_decoder(loaded.source.path if loaded.source.path.is_dir() else None,
                                             family, taesd_folder)
    tiny = None
    if folder is not None:
        try:
            tiny = tiny_decoders.load_tiny_decoder(folder, loaded.device, loaded.dtype)
        except Exception as error:  # noqa: BLE001 - a broken decoder folder must not stop the model loading
            loaded.notes.append(f"the TAESD decoder in {folder} did not load ({type(error).__name__}); "
                                "previews use the other methods")
        else:
            if tiny.config.latent_channels != latent_channels(vae):
                loaded.notes.append(f"the TAESD decoder in {folder} reads {tiny.config.latent_channels}-channel "
                                    f"latents, this model makes {latent_channels(vae)}: not used")
                tiny = None
    decoders = Decoders(family=family, device=loaded.device, vae=vae, tiny=tiny,
                        latent_map=latent_maps.published_map(family), fit_size=loaded.native_size,
                        notes=loaded.notes)
    if tiny is not None and loaded.device.type == "cpu":
        from diffusers_tui.engine.preview.worker import DecoderProcess

        decoders.process = DecoderProcess(folder)
        weakref.finalize(decoders, decoders.process.close)  # the child goes with the model's decoders
    scale = loaded.pipeline.vae_scale_factor
    width, height = loaded.native_size
    decoders.choose_auto((latent_channels(vae), height // scale, width // scale))
    loaded.family = family
    return decoders

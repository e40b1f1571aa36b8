"""Where a run's noise comes from, by each tool's rule: the starting noise, then a sampler's fresh noise.

Conventions (the names recipes record):

- "A1111 CPU" / "A1111 GPU" / "A1111 NV": stable-diffusion-webui's RNG source setting (modules/rng.py,
  ImageRNG). One generator per image, seeded with that image's seed, draws that image's starting
  noise (per-image shape, float32); the ancestral samplers' noise (TorchHijack.randn_like ->
  ImageRNG.next) continues those same generators, one draw per image per call, unless the eta noise
  seed delta (ENSD) is set: then right after the starting noise every generator is replaced by a fresh
  one seeded with seed + ENSD. CPU: torch's CPU generator. GPU: the CUDA generator; on a machine
  without CUDA it is emulated with the Philox generator (philox.py), which is what NV always uses.
  SDE samplers get k-diffusion's BrownianTreeNoiseSampler with one tree per image (entropy = the
  image's seed, on x's device), whose Gaussian draws A1111 routes through the same RNG source
  (sd_samplers_common.replace_torchsde_browinan -> rng.randn_local).
- "ComfyUI": comfy/sample.py prepare_noise draws the whole batch at once on the CPU from one
  generator seeded with the one seed; ancestral samplers draw the whole batch on x's device from
  a second generator seeded with the same seed (k_diffusion/sampling.py default_noise_sampler); SDE
  samplers use one Brownian tree for the whole batch (entropy = the seed), held on the CPU except
  for the *_gpu samplers.

Nothing here touches torch's global generator.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .philox import PhiloxGenerator

CONVENTIONS = ("A1111 CPU", "A1111 GPU", "A1111 NV", "ComfyUI")

#: A sampler's noise: `noise(sigma, sigma_next)` -> a tensor shaped like x.
NoiseFn = Callable[[float, float], torch.Tensor]


class NoiseSource:
    """One run's noise (one sampling pass): draw `initial` first, then hand `for_sampler` to the sampler.

    `seeds` has one seed per image. ComfyUI seeds a whole batch with one seed, so for it every entry
    must be the same seed. `batch_index` is ComfyUI's latent "batch_index" (the images of a bigger
    batch these are). `device` is where the run's tensors live; for "A1111 GPU" a CUDA device there
    (or any CUDA at all) draws with torch's CUDA generator, no CUDA draws with the Philox emulation.
    """

    def __init__(self, convention: str, seeds: Sequence[int], device: torch.device | str = "cpu", *,
                 ensd: int = 0, batch_index: Sequence[int] | None = None):
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown noise convention {convention!r}; known: {', '.join(CONVENTIONS)}")
        if not seeds:
            raise ValueError("a noise source needs at least one seed")
        self.convention = convention
        self.seeds = [int(seed) for seed in seeds]
        self.device = torch.device(device)
        self.ensd = int(ensd or 0)
        self.batch_index = None if batch_index is None else [int(i) for i in batch_index]
        if convention == "ComfyUI":
            if len(set(self.seeds)) != 1:
                raise ValueError("ComfyUI seeds a batch with one seed; got different seeds per image")
            if self.ensd:
                raise ValueError("ComfyUI has no eta noise seed delta")
            if self.batch_index is not None and len(self.batch_index) != len(self.seeds):
                raise ValueError("batch_index needs one entry per image")
        elif self.batch_index is not None:
            raise ValueError("batch_index is ComfyUI's; A1111 seeds each image instead")
        #: What draws this run's noise: "cpu", "cuda" (torch's generators) or "philox" (the emulation).
        self.generator = _a1111_generator_kind(convention, self.device) if convention != "ComfyUI" else "cpu"
        self._generators: list | None = None  # A1111: the per-image generators, live across the run
        self._initial_drawn = False

    # -- the starting noise ------------------------------------------------------------------------

    def initial(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The starting noise, unscaled: `shape` is the whole latent's, batch first (batch = len(seeds)).

        Both tools draw it in float32 (A1111's randn default, ComfyUI's empty latent's dtype); it is
        cast to `dtype` after, so a half-precision run starts from the same numbers."""
        shape = tuple(int(d) for d in shape)
        if not shape or shape[0] != len(self.seeds):
            raise ValueError(f"noise shape {shape} needs its batch ({len(self.seeds)} seeds) first")
        if self._initial_drawn:
            raise RuntimeError("this run's starting noise was already drawn; one NoiseSource per pass")
        self._initial_drawn = True
        if self.convention == "ComfyUI":
            noise = _comfy_prepare_noise(self.seeds[0], shape, self.batch_index)
        else:
            self._generators = [self._new_generator(seed) for seed in self.seeds]
            noise = torch.stack([self._draw(gen, shape[1:]) for gen in self._generators])
            # ImageRNG.first(): with an ENSD set, everything after the starting noise comes from
            # generators seeded seed + ENSD (no draw is skipped; they start fresh).
            if self.ensd:
                self._generators = [self._new_generator(seed + self.ensd) for seed in self.seeds]
        return noise.to(device=self.device, dtype=dtype)

    # -- a sampler's noise -------------------------------------------------------------------------

    def for_sampler(self, x_like: torch.Tensor, sigma_min: float | None = None, sigma_max: float | None = None,
                    brownian: bool = False, *, sigmas: Sequence[float] | None = None,
                    tree_on_cpu: bool | None = None) -> NoiseFn:
        """The `noise(sigma, sigma_next)` a sampler gets: fresh Gaussian noise for ancestral steps, or
        with `brownian` the normalised Brownian-tree increment (W(σ_next) - W(σ)) / sqrt|σ_next - σ|
        for SDE samplers, from a tree over [sigma_min, sigma_max] built at the first call.

        The tools' σ range is the smallest non-zero and the largest σ of the schedule (A1111: the
        whole schedule even for img2img; ComfyUI: the σ the sampler is handed): pass that schedule as
        `sigmas` to have it taken so, or give sigma_min and sigma_max. `tree_on_cpu` is
        ComfyUI's `cpu` flag (True but for dpmpp_sde_gpu, dpmpp_2m_sde_gpu, dpmpp_2m_sde_heun_gpu,
        dpmpp_3m_sde_gpu); A1111's tree is always on x's device.
        """
        if x_like.shape[0] != len(self.seeds):
            raise ValueError(f"x has batch {x_like.shape[0]} but there are {len(self.seeds)} seeds")
        if brownian:
            if sigmas is not None:
                # k-diffusion's `sigmas[sigmas > 0].min(), sigmas.max()`, on float32 σ as the tools hold them.
                held = torch.as_tensor([float(s) for s in sigmas], dtype=torch.float32)
                sigma_min, sigma_max = float(held[held > 0].min()), float(held.max())
            if sigma_min is None or sigma_max is None:
                raise ValueError("a Brownian tree needs its σ range: sigma_min and sigma_max, or sigmas")
            return _BrownianNoise(self, x_like, sigma_min, sigma_max, tree_on_cpu)
        if self.convention == "ComfyUI":
            return _comfy_ancestral(self.seeds[0], x_like)
        if not self._initial_drawn:
            # A1111's generators drew the starting noise before the sampler ran: draw it here and
            # drop it, so a sampler-only source continues where a whole run would have.
            self.initial(x_like.shape)
        return self._a1111_ancestral(x_like)

    def _a1111_ancestral(self, x_like: torch.Tensor) -> NoiseFn:
        shape, device, dtype = tuple(x_like.shape[1:]), x_like.device, x_like.dtype

        def noise(sigma: float, sigma_next: float) -> torch.Tensor:
            # ImageRNG.next(): one draw per image from its generator, whatever the σ.
            return torch.stack([self._draw(gen, shape) for gen in self._generators]).to(device=device, dtype=dtype)

        return noise

    # -- A1111's generators (rng.create_generator, rng.randn, rng.randn_local) ---------------------

    def _new_generator(self, seed: int):
        if self.generator == "philox":
            return PhiloxGenerator(seed)
        return torch.Generator(self._draw_device()).manual_seed(int(seed))

    def _draw(self, gen, shape: Sequence[int]) -> torch.Tensor:
        if isinstance(gen, PhiloxGenerator):
            return torch.from_numpy(gen.randn(tuple(shape)))
        return torch.randn(tuple(shape), generator=gen, device=gen.device, dtype=torch.float32)

    def _draw_device(self) -> torch.device:
        if self.generator == "cuda":
            return self.device if self.device.type == "cuda" else torch.device("cuda")
        return torch.device("cpu")

    def randn_local(self, seed: int, shape: Sequence[int]) -> torch.Tensor:
        """A1111's rng.randn_local: the first draw of a fresh generator seeded `seed`, float32."""
        return self._draw(self._new_generator(seed), shape)


def _a1111_generator_kind(convention: str, device: torch.device) -> str:
    if convention == "A1111 NV":
        return "philox"
    if convention == "A1111 GPU":
        # The GPU setting's numbers are CUDA's: drawn there when there is CUDA, emulated otherwise (so
        # a "RNG: GPU" PNG re-runs on a CPU box; exact in layout, within ~1e-6 in value).
        return "cuda" if device.type == "cuda" or torch.cuda.is_available() else "philox"
    return "cpu"


def _comfy_prepare_noise(seed: int, shape: tuple[int, ...], batch_index: list[int] | None) -> torch.Tensor:
    """comfy/sample.py prepare_noise: torch.manual_seed(seed) then CPU randn; a private generator
    gives the same numbers without reseeding torch's global one."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    if batch_index is None:
        return torch.randn(shape, generator=generator, dtype=torch.float32)
    # With a batch_index, ComfyUI draws image 0, 1, ... up to the highest index one at a time and
    # keeps those asked for, so image k of a batch re-runs alone with the same noise.
    unique, inverse = np.unique(batch_index, return_inverse=True)
    kept = []
    for i in range(int(unique[-1]) + 1):
        one = torch.randn((1, *shape[1:]), generator=generator, dtype=torch.float32)
        if i in unique:
            kept.append(one)
    return torch.cat([kept[int(i)] for i in np.asarray(inverse).reshape(-1)], dim=0)


def _comfy_ancestral(seed: int, x_like: torch.Tensor) -> NoiseFn:
    """k_diffusion/sampling.py default_noise_sampler(x, seed): its own generator on x's device, the
    whole batch per call in x's dtype."""
    generator = torch.Generator(device=x_like.device).manual_seed(int(seed))
    size, dtype, device = x_like.size(), x_like.dtype, x_like.device
    return lambda sigma, sigma_next: torch.randn(size, dtype=dtype, device=device, generator=generator)


# -- Brownian trees ---------------------------------------------------------------------------------

def _torchsde_randn(size, dtype, device, seed):
    # torchsde's own _randn (brownian_interval.py): a fresh generator per split, seeded with its seed.
    generator = torch.Generator(device).manual_seed(int(seed))
    return torch.randn(size, dtype=dtype, device=device, generator=generator)


def _sorted(a: torch.Tensor, b: torch.Tensor):
    # k-diffusion's BatchedBrownianTree.sort: trees take increasing times; the sign is put back after.
    return (a, b, 1) if a < b else (b, a, -1)


class _BrownianNoise:
    """k-diffusion's BrownianTreeNoiseSampler over BatchedBrownianTree (ComfyUI's copy for "ComfyUI").

    Times are float32 tensors as both tools hold σ, so the tree sees the same float32-rounded times."""

    def __init__(self, source: NoiseSource, x_like: torch.Tensor, sigma_min: float, sigma_max: float,
                 tree_on_cpu: bool | None):
        self.source = source
        self.shape, self.device, self.dtype = tuple(x_like.shape), x_like.device, x_like.dtype
        self.t0, self.t1, self.sign = _sorted(_as_time(sigma_min), _as_time(sigma_max))
        comfy = source.convention == "ComfyUI"
        # ComfyUI's samplers hold the tree on the CPU unless they are the *_gpu ones; k-diffusion
        # (A1111) puts it where x is.
        self.tree_device = torch.device("cpu") if comfy and tree_on_cpu is not False else self.device
        self.trees = None

    def _randn(self):
        if self.source.convention == "ComfyUI":
            return _torchsde_randn
        # sd_samplers_common.replace_torchsde_browinan: rng.randn_local(seed, size).to(device, dtype).
        source = self.source
        return lambda size, dtype, device, seed: source.randn_local(seed, size).to(device=device, dtype=dtype)

    def _build(self):
        from .brownian import BrownianTree

        if self.source.convention == "ComfyUI":
            # One seed, not a list: one tree over the whole batch (BatchedBrownianTree, batched=False).
            seeds, shape = self.source.seeds[:1], self.shape
        else:
            # A list of per-image seeds: one tree per image over that image's shape (batched=True).
            seeds, shape = self.source.seeds, self.shape[1:]
        # torchsde.BrownianTree(t0, w0, t1, entropy=seed)'s numbers, from brownian.py's faster walk of it.
        self.trees = [BrownianTree(float(self.t0), float(self.t1), shape, self.dtype, self.tree_device, seed,
                                   self._randn()) for seed in seeds]

    def __call__(self, sigma: float, sigma_next: float) -> torch.Tensor:
        return self._increment(sigma, sigma_next)

    def _increment(self, sigma: float, sigma_next: float) -> torch.Tensor:
        t0, t1 = _as_time(sigma), _as_time(sigma_next)
        if t0 == t1:
            # k-diffusion would divide 0 by 0; no step draws over an empty interval, so none is drawn.
            return torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        a, b, sign = _sorted(t0, t1)
        if self.trees is None:
            self._build()  # here, not up front: a tree costs draws and only SDE steps need it
        # The tree rounds its ends to its tolerance (0.03 for float32 0.0299999993) and clamps queries
        # at σ_min or σ_max to them, as torchsde does in both tools.
        w = torch.stack([tree(float(a), float(b)) for tree in self.trees])
        if self.source.convention == "ComfyUI":
            # ComfyUI casts the increment to σ's dtype (float32) before the sign; k-diffusion keeps x's.
            w = w[0].to(torch.float32)  # one tree: its increment is already batch-shaped
        w = w * (self.sign * sign)
        return (w / (t1 - t0).abs().sqrt()).to(device=self.device, dtype=self.dtype)


def _as_time(sigma) -> torch.Tensor:
    return torch.as_tensor(float(sigma), dtype=torch.float32)


# -- one-call forms ---------------------------------------------------------------------------------

def initial_noise(convention: str, seeds: Sequence[int], shape: Sequence[int], device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, *, batch_index: Sequence[int] | None = None) -> torch.Tensor:
    """The starting noise of a run (shape batch first, batch = len(seeds)); see NoiseSource.initial."""
    return NoiseSource(convention, seeds, device, batch_index=batch_index).initial(shape, dtype)


def step_noise(convention: str, seeds: Sequence[int], x_like: torch.Tensor, sigma_min: float, sigma_max: float,
               brownian: bool, ensd: int = 0, *, tree_on_cpu: bool | None = None) -> NoiseFn:
    """A sampler's noise for a run whose starting noise (shaped like x) was drawn by the same
    convention and seeds: A1111's generators are advanced past that draw first. A run that draws its
    starting noise itself should use one NoiseSource for both instead."""
    source = NoiseSource(convention, seeds, x_like.device, ensd=ensd)
    return source.for_sampler(x_like, sigma_min, sigma_max, brownian, tree_on_cpu=tree_on_cpu)

"""A1111's variation seeds and seed resize: a run's starting noise slerped toward another seed's, and drawn as
for another size, as A1111's ImageRNG.first() draws it (modules/rng.py).

Each noise is drawn under the run's noise convention from a generator seeded afresh (A1111's randn(seed,
shape)), per image as (C, H, W); the slerp is A1111's own, norms taken along dim 1 of that shape and
its near-parallel shortcut (`low * val + high * (1 - val)`) kept as A1111 writes it. With a seed resize
the seed's noise is drawn at the other size and pasted, centred, into the seed's noise at this size.
The sampler's own noise continues from the seed's generator either way, as A1111's does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # torch loads with a run, not with the recipe code that writes snippets
    import torch


def checked_resize(request, max_seed: int, max_side: int) -> tuple[int, int] | None:
    """Check a request's variation fields (its seeds up to `max_seed`, sides up to `max_side`); returns its seed
    resize as (width, height), or None. RequestError names a bad one."""
    from diffusers_tui.engine.errors import RequestError

    def whole(name: str, value, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(name, f"{value!r} is not a whole number from {low} to {high}")
        return value

    if request.variation_seed is not None:
        whole("variation_seed", request.variation_seed, 0, max_seed)
    strength = request.variation_strength
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise RequestError("variation_strength", f"{strength!r} is outside 0 to 1")
    if strength and request.variation_seed is None:
        raise RequestError("variation_seed", f"a variation strength of {strength:g} needs the variation seed it "
                                             "moves toward: give both")
    size = request.seed_resize_from
    if size is None:
        return None
    if isinstance(size, (str, bytes)) or not isinstance(size, (list, tuple)) or len(size) != 2:
        raise RequestError("seed_resize_from", f"{size!r} is not a (width, height) pair, e.g. 512x512")
    for side in size:
        if whole("seed_resize_from", side, 8, max_side) % 8:
            raise RequestError("seed_resize_from", f"{side} is not a multiple of 8 (8 to {max_side})")
    return int(size[0]), int(size[1])


def applies(request) -> bool:
    """Whether `request` asks for a variation or a seed resize (its starting noise is then drawn here)."""
    return bool(request.variation_strength) or request.seed_resize_from is not None


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's slerp (modules/rng.py) of two (C, H, W) noises, `val` toward `high`."""
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def starting_noise(request, shape: Sequence[int], convention: str, device, dtype, latent_factor: int = 8) -> torch.Tensor:
    """The run's unit starting noise of `shape` (1, C, H, W) with its variation seed and seed resize applied,
    drawn under `convention` (engine.sampling.sigma.noise)."""
    return varied_noise(request.seed, request.variation_seed, request.variation_strength, request.seed_resize_from,
                        shape, convention, device, dtype, latent_factor)


def varied_noise(seed: int, variation_seed: int | None, strength: float, resize_from: Sequence[int] | None,
                 shape: Sequence[int], convention: str, device, dtype, latent_factor: int = 8) -> torch.Tensor:
    """starting_noise's work, from plain values (the stand-in scheduler offers it to a recipe's snippet)."""
    from diffusers_tui.engine.sampling.sigma.noise import NoiseSource

    def draw(noise_seed: int, size: Sequence[int]) -> torch.Tensor:  # A1111's randn(seed, shape): a fresh generator
        return NoiseSource(convention, [noise_seed], "cpu").initial((1, *size))[0]

    full = tuple(int(d) for d in shape[1:])
    noise_shape = full if resize_from is None else (full[0], resize_from[1] // latent_factor,
                                                   resize_from[0] // latent_factor)
    noise = draw(seed, noise_shape)
    if strength:
        noise = slerp(strength, noise, draw(variation_seed or 0, noise_shape))
    if noise_shape != full:
        noise = _pasted(draw(seed, full), noise)
    return noise.unsqueeze(0).to(device=device, dtype=dtype)


def _pasted(full: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`noise` centred in `full` (both (C, H, W)), cropped where it is larger: A1111's seed resize."""
    dx, dy = (full.shape[2] - noise.shape[2]) // 2, (full.shape[1] - noise.shape[1]) // 2
    w = noise.shape[2] if dx >= 0 else noise.shape[2] + 2 * dx
    h = noise.shape[1] if dy >= 0 else noise.shape[1] + 2 * dy
    tx, ty = max(dx, 0), max(dy, 0)
    dx, dy = max(-dx, 0), max(-dy, 0)
    full[:, ty:ty + h, tx:tx + w] = noise[:, dy:dy + h, dx:dx + w]
    return full


#: What a recipe's snippet runs to draw A1111 CPU starting noise with a variation seed and seed resize, when
#: it may not import this package (a diffusers class's): the same steps as varied_noise, written out, with
#: slerp's own source.
_SNIPPET_CPU = """def a1111_randn(seed, shape):  # A1111's randn(seed, shape), CPU source
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))
{slerp_source}
full, small = {full}, {small}
noise = a1111_randn({seed}, small)
if {strength}:
    noise = slerp({strength}, noise, a1111_randn({variation_seed}, small))
if small != full:  # A1111's seed resize: centred, cropped where larger
    x = a1111_randn({seed}, full)
    dx, dy = (full[2] - small[2]) // 2, (full[1] - small[1]) // 2
    w, h = (small[2] if dx >= 0 else small[2] + 2 * dx), (small[1] if dy >= 0 else small[1] + 2 * dy)
    x[:, max(dy, 0):max(dy, 0) + h, max(dx, 0):max(dx, 0) + w] = noise[:, max(-dy, 0):max(-dy, 0) + h, max(-dx, 0):max(-dx, 0) + w]
    noise = x
{name} = noise.unsqueeze(0).to({device!r}, torch.{dtype})"""


def snippet_lines(request, channels: str, factor: str, height: int, width: int, device: str, dtype: str,
                  convention: str | None, name: str = "latents") -> list[str]:
    """Lines of a recipe's snippet that set `name` to this run's starting noise (its variation seed and seed
    resize): written out for A1111 CPU noise, through the stand-in scheduler for the engine's other noise.
    `channels` and `factor` are the snippet's expressions for the latent channels and the VAE's scale."""
    full = f"({channels}, {height} // {factor}, {width} // {factor})"
    resize = request.seed_resize_from
    small = full if resize is None else f"({channels}, {resize[1]} // {factor}, {resize[0]} // {factor})"
    if convention not in (None, "A1111 CPU"):
        return [f"{name} = scheduler.varied_starting_noise((1, *{full}), {device!r}, torch.{dtype}, "
                f"{request.variation_seed!r}, {request.variation_strength!r}, {resize!r}, {factor})"]
    import inspect

    return _SNIPPET_CPU.format(full=full, small=small, seed=request.seed, strength=request.variation_strength,
                               variation_seed=request.variation_seed or 0, name=name, device=device, dtype=dtype,
                               slerp_source=inspect.getsource(slerp).rstrip()).splitlines()

"""A model's noise levels: its training σ table, σ <-> timestep by each tool's rule, and flow shift."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelSigmas:
    """The σ of each training timestep, ascending (σ of t=0 first), as k-diffusion and ComfyUI hold it.

    For ε- and v-models σ = sqrt((1 - ᾱ) / ᾱ). For flow models σ is the (shifted) time
    t/1000 itself, as ComfyUI's ModelSamplingDiscreteFlow holds it: x = (1 - σ) x0 + σ ε.
    """

    sigmas: torch.Tensor  # float32, CPU, ascending, one per training timestep
    flow: bool = False
    #: Flow models: the shift in use (time_snr_shift), and the timestep multiplier (t = σ · 1000).
    shift: float = 1.0
    multiplier: float = 1000.0
    exponential: bool = False

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: torch.Tensor) -> "ModelSigmas":
        alphas = alphas_cumprod.detach().double().cpu()
        return cls((((1 - alphas) / alphas) ** 0.5).float())

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> "ModelSigmas":
        return cls.from_alphas_cumprod(torch.cumprod(1.0 - betas.double(), dim=0))

    @classmethod
    def for_flow(cls, shift: float = 1.0, exponential: bool = False, multiplier: float = 1000.0) -> "ModelSigmas":
        """A flow model's table: SD3's shift (ComfyUI's ModelSamplingDiscreteFlow, 1000 entries), or with
        `exponential` Flux's resolution-dependent shift μ (ModelSamplingFlux, 10,000 entries)."""
        timesteps = 10000 if exponential else 1000
        times = torch.arange(1, timesteps + 1, dtype=torch.float64) / timesteps
        shifted = flux_time_shift(shift, times) if exponential else time_snr_shift(shift, times)
        return cls(shifted.float(), flow=True, shift=shift, multiplier=multiplier, exponential=exponential)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    @property
    def log_sigmas(self) -> torch.Tensor:
        return self.sigmas.log()

    def timestep(self, sigma: float, nearest: bool = False) -> float:
        """The model's timestep for σ: log-σ interpolated (k-diffusion, A1111), or the nearest
        training timestep by log σ (ComfyUI). Flow models: σ · multiplier (both tools)."""
        if self.flow:
            return float(sigma) * self.multiplier
        log_sigmas = self.log_sigmas
        log_sigma = math.log(max(float(sigma), 1e-10))
        if nearest:
            return float((log_sigmas - log_sigma).abs().argmin())
        dists = log_sigma - log_sigmas
        low = int(dists.ge(0).cumsum(dim=0).argmax().clamp(max=len(log_sigmas) - 2))
        w = (float(log_sigmas[low]) - log_sigma) / (float(log_sigmas[low]) - float(log_sigmas[low + 1]))
        w = min(max(w, 0.0), 1.0)
        return (1 - w) * low + w * (low + 1)

    def sigma(self, timestep: float) -> float:
        """σ of a (fractional) timestep, log-linearly between training timesteps (k-diffusion's t_to_sigma)."""
        if self.flow:
            time = torch.tensor(timestep / self.multiplier, dtype=torch.float64)
            return float(flux_time_shift(self.shift, time) if self.exponential else time_snr_shift(self.shift, time))
        t = min(max(float(timestep), 0.0), len(self.sigmas) - 1.0)
        low, high = math.floor(t), math.ceil(t)
        w = t - low
        log_sigmas = self.log_sigmas
        return math.exp((1 - w) * float(log_sigmas[low]) + w * float(log_sigmas[high]))


def time_snr_shift(shift: float, t):
    """ComfyUI's and SD3's shift of flow time: shift·t / (1 + (shift - 1)·t)."""
    if shift == 1.0:
        return t
    return shift * t / (1 + (shift - 1) * t)


def flux_time_shift(mu: float, t):
    """Flux's shift of flow time by μ (the image size's): e^μ / (e^μ + 1/t - 1)."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1))

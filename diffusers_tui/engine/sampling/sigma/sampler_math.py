"""The σ algebra samplers share: half-log-SNR time and its inverse, and the ancestral splits of a step."""

from __future__ import annotations

import math

def half_log_snr(sigma: float, flow: bool) -> float:
    """λ of σ: -log σ for ε/v models (α = 1), log((1-σ)/σ) for flow models (α = 1-σ).

    The ends are infinite rather than an error: λ(0) = +∞, and λ(1) = -∞ on a flow model."""
    if sigma <= 0:
        return math.inf
    if flow:
        if sigma >= 1:
            return -math.inf
        return math.log1p(-sigma) - math.log(sigma)
    return -math.log(sigma)

def sigma_of_half_log_snr(lam: float, flow: bool) -> float:
    """σ of λ: e^-λ, or on a flow model the logistic 1/(1 + e^λ)."""
    if flow:
        # Written both ways round so neither exp overflows.
        return 1.0 / (1.0 + math.exp(lam)) if lam < 0 else math.exp(-lam) / (1.0 + math.exp(-lam))
    return math.exp(-lam)

def alpha_of(sigma: float, flow: bool) -> float:
    """The signal scale α_σ = σ·e^λ: 1 on ε/v models, 1 - σ on flow models."""
    return 1.0 - sigma if flow else 1.0

def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """(σ_down, σ_up) of k-diffusion's get_ancestral_step, kept to its float behaviour: with σ_from
    infinite the ratio is NaN and min() keeps σ_to, so σ_up = σ_to and σ_down = 0."""
    if not eta:
        return sigma_to, 0.0
    ratio = sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2 if sigma_from else math.nan
    sigma_up = min(sigma_to, eta * ratio**0.5 if ratio >= 0 or math.isnan(ratio) else math.nan)
    sigma_down = max(sigma_to**2 - sigma_up**2, 0.0) ** 0.5
    return sigma_down, sigma_up

def flow_ancestral_step(sigma: float, sigma_next: float, eta: float) -> tuple[float, float, float]:
    """ComfyUI's rectified-flow ancestral split: (σ_down, α_next/α_down, renoise coefficient).

    Step down to σ_down, rescale by α_next/α_down and add renoise·ε to land on σ_next."""
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
    rescale = alpha_next / alpha_down if alpha_down else math.inf
    renoise = max(sigma_next**2 - sigma_down**2 * rescale**2, 0.0) ** 0.5 if alpha_down else 0.0
    return sigma_down, rescale, renoise

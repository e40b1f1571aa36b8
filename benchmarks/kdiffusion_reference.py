"""What A1111 runs, written from k-diffusion's published samplers and A1111's own schedule and DDIM/PLMS code.

A reference for `a1111_parity.py` and the parity test, never used by the app: k-diffusion itself
does not install beside our torch (it needs torchvision), so its algorithms are written out here:
the CompVis discrete σ schedule with log-σ interpolation, A1111's schedule types and per-sampler
"Automatic" defaults, discard-penultimate for DPM2, a Brownian-tree noise sampler seeded per image
(DPM++ SDE and 2M SDE), and A1111's timestep samplers (DDIM, PLMS) with their `range(0, 1000,
1000 // steps) + 1` timesteps. Noise is A1111's "RNG: CPU": one CPU generator seeded with the seed,
first for the starting latent, then for each ancestral draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

#: A1111 v1.10's "Automatic" schedule per sampler (sd_samplers_kdiffusion: options["scheduler"]).
AUTOMATIC = {"DPM++ 2M": "Karras", "DPM++ SDE": "Karras", "DPM++ 2M SDE": "Exponential", "DPM2": "Karras",
             "DPM2 a": "Karras"}
#: Samplers whose σ list is built one longer and loses its next-to-last entry.
DISCARD_PENULTIMATE = {"DPM2", "DPM2 a"}
#: Model calls per step.
SECOND_ORDER = {"Heun", "DPM2", "DPM2 a", "DPM++ SDE"}


class DiscreteSchedule:
    """k-diffusion's CompVisDenoiser schedule: σ per training timestep, t <-> σ by log-σ interpolation."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        self.alphas_cumprod = alphas_cumprod.float()
        self.sigmas = ((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5
        self.log_sigmas = self.sigmas.log()
        self.sigma_min, self.sigma_max = float(self.sigmas[0]), float(self.sigmas[-1])

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        low = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=self.log_sigmas.shape[0] - 2)
        high = low + 1
        w = ((self.log_sigmas[low] - log_sigma) / (self.log_sigmas[low] - self.log_sigmas[high])).clamp(0, 1)
        return ((1 - w) * low + w * high).view(sigma.shape)


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def sigmas_for(schedule: str, n: int, model: DiscreteSchedule) -> torch.Tensor:
    """A1111's σ list (n values and a final 0) for a schedule type."""
    lo, hi = model.sigma_min, model.sigma_max
    if schedule == "Uniform":
        return _append_zero(model.t_to_sigma(torch.linspace(len(model.sigmas) - 1, 0, n)))
    if schedule == "Karras":
        ramp = torch.linspace(0, 1, n)
        rho = 7.0
        return _append_zero((hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho)
    if schedule == "Exponential":
        return _append_zero(torch.linspace(math.log(hi), math.log(lo), n).exp())
    if schedule == "SGM Uniform":
        start, end = model.sigma_to_t(torch.tensor(hi)), model.sigma_to_t(torch.tensor(lo))
        return _append_zero(torch.stack([model.t_to_sigma(t) for t in torch.linspace(start, end, n + 1)[:-1]]))
    if schedule == "Beta":
        from scipy import stats

        fractions = [stats.beta.ppf(x, 0.6, 0.6) for x in 1 - torch.linspace(0, 1, n).double().numpy()]
        return _append_zero(torch.tensor([lo + x * (hi - lo) for x in fractions], dtype=torch.float32))
    raise ValueError(f"no reference for the {schedule} schedule")


def a1111_sigmas(sampler: str, schedule: str, steps: int, model: DiscreteSchedule) -> torch.Tensor:
    """The σ list A1111's KDiffusionSampler.get_sigmas hands a sampler."""
    if schedule == "Automatic":
        schedule = AUTOMATIC.get(sampler, "Uniform")
    discard = sampler in DISCARD_PENULTIMATE
    sigmas = sigmas_for(schedule, steps + (1 if discard else 0), model)
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


# ----- the samplers, as k-diffusion publishes them (eta 1, s_noise 1, no churn) -----

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _to_d(x, sigma, denoised):
    return (x - denoised) / sigma


def _ancestral_step(sigma_from, sigma_to, eta=1.0):
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    return (sigma_to ** 2 - sigma_up ** 2) ** 0.5, sigma_up


def euler(model: Denoiser, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        x = x + _to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x


def euler_ancestral(model, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        sigma_down, sigma_up = _ancestral_step(sigmas[i], sigmas[i + 1])
        x = x + _to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise.randn_like(x) * sigma_up
    return x


def heun(model, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        d = _to_d(x, sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = _to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1]))
            x = x + (d + d_2) / 2 * dt
    return x


def dpm_2(model, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        d = _to_d(x, sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = _to_d(x_2, sigma_mid, model(x_2, sigma_mid))
            x = x + d_2 * (sigmas[i + 1] - sigmas[i])
    return x


def dpm_2_ancestral(model, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        sigma_down, sigma_up = _ancestral_step(sigmas[i], sigmas[i + 1])
        d = _to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(torch.as_tensor(sigma_down).log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = _to_d(x_2, sigma_mid, model(x_2, sigma_mid))
            x = x + d_2 * (sigma_down - sigmas[i])
            x = x + noise.randn_like(x) * sigma_up
    return x


def _lms_coefficient(order, t, i, j):
    from scipy import integrate

    def fn(tau):
        product = 1.0
        for k in range(order):
            if j != k:
                product *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return product

    return integrate.quad(fn, t[i], t[i + 1], epsrel=1e-4)[0]


def lms(model, x, sigmas, noise, order=4):
    sigmas_cpu = sigmas.detach().cpu().numpy()
    derivatives = []
    for i in range(len(sigmas) - 1):
        derivatives.append(_to_d(x, sigmas[i], model(x, sigmas[i])))
        if len(derivatives) > order:
            derivatives.pop(0)
        current = min(i + 1, order)
        coefficients = [_lms_coefficient(current, sigmas_cpu, i, j) for j in range(current)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(derivatives)))
    return x


def _t(sigma):
    return sigma.log().neg()


def _sigma(t):
    return t.neg().exp()


def dpmpp_2m(model, x, sigmas, noise):
    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        h = t_next - t
        if old_denoised is None or sigmas[i + 1] == 0:
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised
        else:
            r = (t - _t(sigmas[i - 1])) / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x


def dpmpp_sde(model, x, sigmas, noise, r=0.5):
    brownian = noise.brownian(x, sigmas)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = x + _to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
            continue
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        h = t_next - t
        s = t + h * r
        fac = 1 / (2 * r)
        sd, su = _ancestral_step(_sigma(t), _sigma(s))
        s_ = _t(torch.as_tensor(sd))
        x_2 = (_sigma(s_) / _sigma(t)) * x - (t - s_).expm1() * denoised
        x_2 = x_2 + brownian(_sigma(t), _sigma(s)) * su
        denoised_2 = model(x_2, _sigma(s))
        sd, su = _ancestral_step(_sigma(t), _sigma(t_next))
        t_next_ = _t(torch.as_tensor(sd))
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (_sigma(t_next_) / _sigma(t)) * x - (t - t_next_).expm1() * denoised_d
        x = x + brownian(_sigma(t), _sigma(t_next)) * su
    return x


def dpmpp_2m_sde(model, x, sigmas, noise, eta=1.0):
    brownian = noise.brownian(x, sigmas)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            t, s = -sigmas[i].log(), -sigmas[i + 1].log()
            h = s - t
            eta_h = eta * h
            x = sigmas[i + 1] / sigmas[i] * (-eta_h).exp() * x + (-h - eta_h).expm1().neg() * denoised
            if old_denoised is not None:
                x = x + 0.5 * (-h - eta_h).expm1().neg() * (h_last / h) ** -1 * (denoised - old_denoised)
            x = x + brownian(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * eta_h).expm1().neg().sqrt()
        old_denoised, h_last = denoised, h if sigmas[i + 1] != 0 else h_last
    return x


K_SAMPLERS = {"Euler": euler, "Euler a": euler_ancestral, "Heun": heun, "DPM2": dpm_2, "DPM2 a": dpm_2_ancestral,
              "LMS": lms, "DPM++ 2M": dpmpp_2m, "DPM++ SDE": dpmpp_sde, "DPM++ 2M SDE": dpmpp_2m_sde}


# ----- A1111's timestep samplers: DDIM and PLMS on range(0, 1000, 1000 // steps) + 1 -----

def a1111_timesteps(steps: int) -> torch.Tensor:
    return torch.clip(torch.asarray(list(range(0, 1000, 1000 // steps))) + 1, 0, 999)


def ddim(eps_model, x, alphas_cumprod, steps):
    """A1111's DDIM (eta 0): len(timesteps) - 1 model calls, the last landing on ᾱ at t=1."""
    timesteps = a1111_timesteps(steps)
    alphas = alphas_cumprod[timesteps]
    alphas_prev = alphas_cumprod[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].double()
    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        e_t = eps_model(x, timesteps[index])
        a_t, a_prev = alphas[index].item(), alphas_prev[index].item()
        pred_x0 = (x - (1 - a_t) ** 0.5 * e_t) / a_t ** 0.5
        x = a_prev ** 0.5 * pred_x0 + (1.0 - a_prev) ** 0.5 * e_t
    return x


def plms(eps_model, x, alphas_cumprod, steps):
    """A1111's PLMS: a pseudo improved Euler first step, then Adams-Bashforth up to 4th order."""
    timesteps = a1111_timesteps(steps)
    alphas = alphas_cumprod[timesteps]
    alphas_prev = alphas_cumprod[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].double()
    old_eps: list[torch.Tensor] = []

    def x_prev_for(x, e_t, index):
        a_t, a_prev = alphas[index].item(), alphas_prev[index].item()
        pred_x0 = (x - (1 - a_t) ** 0.5 * e_t) / a_t ** 0.5
        return a_prev ** 0.5 * pred_x0 + (1.0 - a_prev) ** 0.5 * e_t

    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        e_t = eps_model(x, timesteps[index])
        if not old_eps:
            e_t_next = eps_model(x_prev_for(x, e_t, index), timesteps[max(index - 1, 0)])
            e_prime = (e_t + e_t_next) / 2
        elif len(old_eps) == 1:
            e_prime = (3 * e_t - old_eps[-1]) / 2
        elif len(old_eps) == 2:
            e_prime = (23 * e_t - 16 * old_eps[-1] + 5 * old_eps[-2]) / 12
        else:
            e_prime = (55 * e_t - 59 * old_eps[-1] + 37 * old_eps[-2] - 9 * old_eps[-3]) / 24
        x = x_prev_for(x, e_prime, index)
        old_eps.append(e_t)
        if len(old_eps) >= 4:
            old_eps.pop(0)
    return x


TIMESTEP_SAMPLERS = {"DDIM": ddim, "PLMS": plms}


@dataclass
class A1111Noise:
    """A1111's noise with `RNG: CPU`: one CPU generator per image, and a Brownian tree seeded with the seed."""

    seed: int

    def __post_init__(self):
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)

    def initial(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self.generator, dtype=x.dtype).to(x.device)

    def brownian(self, x: torch.Tensor, sigmas: torch.Tensor):
        """k-diffusion's BrownianTreeNoiseSampler as A1111 builds it: seeds given as a list (one per image)."""
        import torchsde

        low, high = float(sigmas[sigmas > 0].min()), float(sigmas.max())
        tree = torchsde.BrownianTree(low, torch.zeros_like(x[0]), high, entropy=self.seed)

        def sample(sigma, sigma_next):
            a, b = float(sigma), float(sigma_next)
            sign = 1 if a < b else -1
            t0, t1 = min(a, b), max(a, b)
            return (tree(t0, t1) * sign)[None] / abs(b - a) ** 0.5

        return sample


def run_reference(sampler: str, schedule: str, steps: int, eps: Callable, alphas_cumprod: torch.Tensor,
                  shape, seed: int) -> torch.Tensor:
    """The final latent A1111 reaches: `eps(x_in, t)` is the guided noise prediction of the model."""
    noise = A1111Noise(seed)
    x = noise.initial(shape)
    if sampler in TIMESTEP_SAMPLERS:
        return TIMESTEP_SAMPLERS[sampler](lambda x, t: eps(x, t.float()), x, alphas_cumprod, steps)
    model = DiscreteSchedule(alphas_cumprod)

    def denoise(x, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        c_in = 1 / (sigma ** 2 + 1) ** 0.5
        return x - eps(x * c_in, model.sigma_to_t(sigma.reshape(1))[0]) * sigma

    sigmas = a1111_sigmas(sampler, schedule, steps, model)
    return K_SAMPLERS[sampler](denoise, x * sigmas[0], sigmas, noise)

"""A1111's own samplers (DDIM, DDIM CFG++, PLMS, UniPC, LCM): their timesteps, and their steps against
A1111's variance-preserving formulas on analytic denoisers (Gaussian data N(μ, s²): D is exact)."""

from __future__ import annotations

import math

import pytest
import torch

from diffusers_tui.engine.sampling.sigma import catalogue
from diffusers_tui.engine.sampling.sigma import samplers_a1111 as a1111
from diffusers_tui.engine.sampling.sigma import samplers_kdiffusion as kd
from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.drive import run_with
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas
from diffusers_tui.engine.sampling.sigma.stand_in import SigmaSamplerScheduler

SHAPE = (2, 3, 4)
#: Stable Diffusion's σ table (scaled-linear β from 0.00085 to 0.012 over 1000 steps).
TABLE = ModelSigmas.from_betas(torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2)


def gaussian(mu: float, s: float = 0.5):
    return lambda x, sigma: (s**2 * x + sigma**2 * mu) / (s**2 + sigma**2)


def noise_source(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(SHAPE, generator=generator, dtype=torch.float64)


def start(seed: int = 1) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def vp_ddim(denoise_eps, x_vp, alphas, eta=0.0, noise=None, direction_eps=None):
    """A1111's ddim loop in its own variables: x_t = √ᾱ x0 + √(1-ᾱ) ε over ᾱ of its timesteps, top first."""
    for a_t, a_prev in zip(alphas, alphas[1:]):
        e_t = denoise_eps(x_vp, a_t)
        direction = e_t if direction_eps is None else direction_eps(x_vp, a_t)
        sigma_t = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        pred_x0 = (x_vp - math.sqrt(1 - a_t) * e_t) / math.sqrt(a_t)
        x_vp = math.sqrt(a_prev) * pred_x0 + math.sqrt(1 - a_prev - sigma_t**2) * direction
        if sigma_t:
            x_vp = x_vp + sigma_t * noise(None, None)
    return x_vp


def eps_of(denoiser):
    """ε(x_vp, ᾱ) of a σ-space denoiser, as the model gives it to A1111's timestep samplers."""
    def eps(x_vp, alpha):
        sigma = math.sqrt((1 - alpha) / alpha)
        x = x_vp / math.sqrt(alpha)
        return (x - denoiser(x, sigma)) / sigma
    return eps


def alphas_of(sigmas):
    return [1 / (1 + sigma**2) for sigma in sigmas]


def test_a1111s_timesteps_are_its_compvis_timesteps_with_one_model_call_fewer():
    sigmas = a1111.a1111_timestep_sigmas(TABLE, 20)
    assert [round(TABLE.timestep(sigma)) for sigma in sigmas] == list(range(951, 0, -50))
    # 30 steps: range(0, 1000, 33) has 31 timesteps, so DDIM makes 30 model calls, as A1111's does.
    assert len(a1111.a1111_timestep_sigmas(TABLE, 30)) == 31
    named = catalogue.sampler("A1111:DDIM")
    assert catalogue.sigmas_for(named, "Karras", TABLE, 20) == sigmas  # A1111 ignores the schedule type


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_is_a1111s_variance_preserving_ddim(eta):
    sigmas = a1111.a1111_timestep_sigmas(TABLE, 10)
    denoiser, x_vp = gaussian(0.4), start()
    ours = run_with(denoiser, a1111.ddim, x_vp * math.sqrt(1 + sigmas[0] ** 2), sigmas,
                    SamplerContext(noise=noise_source(), eta=eta))
    theirs = vp_ddim(eps_of(denoiser), x_vp, alphas_of(sigmas), eta, noise_source())
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


def test_ddim_at_eta_zero_is_euler_ending_in_a1111s_scale():
    sigmas = a1111.a1111_timestep_sigmas(TABLE, 10)
    denoiser, x = gaussian(-0.3), start() * 5
    euler = run_with(denoiser, kd.sample_euler, x, sigmas, SamplerContext(noise=noise_source()))
    ddim = run_with(denoiser, a1111.ddim, x, sigmas, SamplerContext(noise=noise_source(), eta=0.0))
    torch.testing.assert_close(ddim * math.sqrt(1 + sigmas[-1] ** 2), euler)


def test_ddim_cfgpp_guides_at_a_twelfth_and_a_half_and_steps_along_the_unconditional():
    sigmas = a1111.a1111_timestep_sigmas(TABLE, 10)
    cond, uncond, scale = gaussian(0.6), gaussian(-0.2), 7.0
    context = SamplerContext(noise=noise_source(), eta=0.0)

    def guided(x, sigma):
        context.uncond_denoised = uncond(x, sigma)  # what the stand-in hands CFG++ samplers after each call
        return uncond(x, sigma) + scale * (cond(x, sigma) - uncond(x, sigma))

    x_vp = start()
    ours = run_with(guided, a1111.ddim_cfgpp, x_vp * math.sqrt(1 + sigmas[0] ** 2), sigmas, context)
    at_a_twelfth = lambda x, sigma: uncond(x, sigma) + scale / 12.5 * (cond(x, sigma) - uncond(x, sigma))  # noqa: E731
    theirs = vp_ddim(eps_of(at_a_twelfth), x_vp, alphas_of(sigmas), direction_eps=eps_of(uncond))
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


def test_plms_is_a1111s_pseudo_linear_multistep():
    sigmas = a1111.a1111_timestep_sigmas(TABLE, 10)
    denoiser, x_vp = gaussian(0.2), start()
    calls = []
    counted = lambda x, sigma: calls.append(sigma) or denoiser(x, sigma)  # noqa: E731
    ours = run_with(counted, a1111.plms, x_vp * math.sqrt(1 + sigmas[0] ** 2), sigmas, SamplerContext(noise=None))
    assert len(calls) == len(sigmas)  # one call a step, and one more on the first
    eps, alphas, old = eps_of(denoiser), alphas_of(sigmas), []
    for a_t, a_prev in zip(alphas, alphas[1:]):
        def step(e):
            return math.sqrt(a_prev) * (x_vp - math.sqrt(1 - a_t) * e) / math.sqrt(a_t) + math.sqrt(1 - a_prev) * e
        e_t = eps(x_vp, a_t)
        if not old:
            e_prime = (e_t + eps(step(e_t), a_prev)) / 2
        elif len(old) == 1:
            e_prime = (3 * e_t - old[-1]) / 2
        elif len(old) == 2:
            e_prime = (23 * e_t - 16 * old[-1] + 5 * old[-2]) / 12
        else:
            e_prime = (55 * e_t - 59 * old[-1] + 37 * old[-2] - 9 * old[-3]) / 24
        x_vp, old = step(e_prime), (old + [e_t])[-3:]
    torch.testing.assert_close(ours, x_vp, rtol=1e-9, atol=1e-9)


def test_unipc_walks_time_uniformly_from_t_1_to_1_over_n_and_reaches_the_ode_solution():
    sigmas = a1111.a1111_unipc_sigmas(TABLE, 20)
    assert len(sigmas) == 21 and sigmas[0] == pytest.approx(TABLE.sigma_max) and sigmas[-1] == pytest.approx(TABLE.sigma_min)
    # The model input time of each is (t - 1/N)·1000, evenly spaced from 999 to 0.
    times = [a1111.a1111_unipc_timestep(TABLE, sigma) for sigma in sigmas]
    assert times == pytest.approx([999 - 999 * k / 20 for k in range(21)], abs=1e-6)
    # The probability-flow ODE of Gaussian data: (x - μ)/√(s² + σ²) is constant along it. A1111's last,
    # long steps (σ 0.23 to 0.03 at 20 steps) cost every sampler accuracy; UniPC's errors halve Euler's and
    # shrink as the steps grow.
    mu, s = 0.4, 0.5
    errors = {}
    for steps in (20, 200):
        sigmas = a1111.a1111_unipc_sigmas(TABLE, steps)
        x = start() * math.sqrt(1 + sigmas[0] ** 2)
        exact = mu + (x - mu) * math.sqrt(s**2 + sigmas[-1] ** 2) / math.sqrt(s**2 + sigmas[0] ** 2)
        ours = run_with(gaussian(mu, s), a1111.unipc, x, sigmas, SamplerContext(noise=None))
        euler = run_with(gaussian(mu, s), kd.sample_euler, x, sigmas, SamplerContext(noise=noise_source()))
        errors[steps] = (float((ours * math.sqrt(1 + sigmas[-1] ** 2) - exact).abs().max()),
                         float((euler - exact).abs().max()))
    assert errors[20][0] < errors[20][1] / 1.5 and errors[200][0] < 5e-3 and errors[200][0] < errors[200][1] / 3


def test_lcm_reads_every_twentieth_sigma_and_lands_on_the_consistency_estimate():
    table = a1111.lcm_table(TABLE)
    assert len(table.sigmas) == 50 and float(table.sigmas[-1]) == float(TABLE.sigmas[999])
    sigmas = catalogue.sigmas_for(catalogue.sampler("A1111:LCM"), "Automatic", table, 4)
    assert [a1111.lcm_timestep(table, sigma) for sigma in sigmas[:-1]] == [999, 679, 339, 19]
    point = torch.full(SHAPE, 0.7, dtype=torch.float64)
    x = start() * sigmas[0]
    result = run_with(lambda x, sigma: point, a1111.lcm, x, sigmas,
                      SamplerContext(noise=noise_source(), options={"model_sigmas": table}))
    # c_skip at the last call (t = 19, scaled 190) is 7e-6: the sample is the estimate, nearly exactly.
    torch.testing.assert_close(result, point, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name, calls, first, last", [("DDIM", 19, 951, 51), ("PLMS", 20, 951, 51),
                                                      ("UniPC", 20, 999, 49.95), ("LCM", 4, 999, 19)])
def test_the_stand_in_calls_the_model_where_a1111_does(name, calls, first, last):
    scheduler = SigmaSamplerScheduler(sampler=f"A1111:{name}", schedule="Automatic")
    scheduler.set_timesteps(4 if name == "LCM" else 20)
    timesteps = scheduler.timesteps.tolist()
    assert len(timesteps) == calls and timesteps[0] == pytest.approx(first) and timesteps[-1] == pytest.approx(last)
    top = scheduler.sigma_list[0]
    # A1111 starts its timestep samplers from unit noise (√(1+σ²) in σ space), LCM from σ_max·noise.
    expected = math.sqrt(1 + top**2) if name != "LCM" else top
    assert scheduler.init_noise_sigma == pytest.approx(expected)


@pytest.mark.parametrize("name", ["DDIM", "DDIM CFG++", "PLMS"])
def test_a_timestep_sampler_that_would_make_no_model_call_is_refused_in_one_line(engine, name):
    """At 1 step A1111's timesteps are t = 1 alone: its loop makes no call and returns the noise."""
    from diffusers_tui.engine import GenerationRequest, RequestError

    with pytest.raises(RequestError, match=r"steps: .*no model call at 1 step.*use 2 steps or more"):
        engine.run(GenerationRequest(prompt="a circle", scheduler=name, steps=1))
    assert engine.run(GenerationRequest(prompt="a circle", scheduler=name, steps=2)).model_calls >= 1

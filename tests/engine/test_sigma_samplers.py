"""The σ-space samplers (k-diffusion's, as A1111 lists them, and ComfyUI's flow forms) on analytic denoisers.

Data that is a single point x0* has D(x, σ) = x0*; Gaussian data N(μ, s²) has the exact denoiser
D = (s² x + σ² μ) / (s² + σ²) (and its flow form), whose probability-flow ODE is solved in closed form.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffusers_tui.engine.sampling.sigma import samplers_dpm_solver as dpm_solver
from diffusers_tui.engine.sampling.sigma import samplers_kdiffusion as kd
from diffusers_tui.engine.sampling.sigma import samplers_sde as sde
from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.drive import run_with

SIGMA_MIN, SIGMA_MAX = 0.03, 14.6
MU, S = 0.4, 0.5
SHAPE = (2, 3, 4)

#: k-diffusion name: (sampler, model calls for n steps ending at 0, noise draws for them at eta = 1).
SAMPLERS = {
    "euler": (kd.sample_euler, lambda n: n, lambda n: n),
    "euler_ancestral": (kd.sample_euler_ancestral, lambda n: n, lambda n: n - 1),
    "heun": (kd.sample_heun, lambda n: 2 * n - 1, lambda n: n),
    "dpm_2": (kd.sample_dpm_2, lambda n: 2 * n - 1, lambda n: n),
    "dpm_2_ancestral": (kd.sample_dpm_2_ancestral, lambda n: 2 * n - 1, lambda n: n - 1),
    "lms": (kd.sample_lms, lambda n: n, lambda n: 0),
    "dpmpp_2s_ancestral": (kd.sample_dpmpp_2s_ancestral, lambda n: 2 * n - 1, lambda n: n - 1),
    "dpmpp_sde": (sde.sample_dpmpp_sde, lambda n: 2 * n - 1, lambda n: 2 * (n - 1)),
    "dpmpp_2m": (kd.sample_dpmpp_2m, lambda n: n, lambda n: 0),
    "dpmpp_2m_sde": (sde.sample_dpmpp_2m_sde, lambda n: n, lambda n: n - 1),
    "dpmpp_2m_sde_heun": (sde.sample_dpmpp_2m_sde_heun, lambda n: n, lambda n: n - 1),
    "dpmpp_3m_sde": (sde.sample_dpmpp_3m_sde, lambda n: n, lambda n: n - 1),
    "dpm_fast": (dpm_solver.sample_dpm_fast, lambda n: n, lambda n: len(dpm_solver.fast_orders(n))),
    "restart": (kd.sample_restart, lambda n: 2 * n - 1, lambda n: 0),  # below 20 steps Restart is Heun
}
#: Those that end at σ_min rather than 0 (A1111 hands them the model's σ range).
RANGE_ONLY = {"dpm_fast", "dpm_adaptive"}
ALL = {**{name: entry[0] for name, entry in SAMPLERS.items()}, "dpm_adaptive": dpm_solver.sample_dpm_adaptive}


class CountingNoise:
    """A context's noise source: seeded plain randn, recording every (σ, σ_next) it was asked for."""

    def __init__(self, seed: int = 0, shape=SHAPE):
        self.generator = torch.Generator().manual_seed(seed)
        self.shape = shape
        self.calls: list[tuple[float, float]] = []

    def __call__(self, sigma: float, sigma_next: float) -> torch.Tensor:
        self.calls.append((sigma, sigma_next))
        return torch.randn(self.shape, generator=self.generator, dtype=torch.float64)


def context(noise=None, **fields) -> SamplerContext:
    fields.setdefault("sigma_min", SIGMA_MIN)
    fields.setdefault("sigma_max", SIGMA_MAX)
    return SamplerContext(noise=noise or CountingNoise(), **fields)


def karras(n: int) -> list[float]:
    return kd.karras_sigmas(n, SIGMA_MIN, SIGMA_MAX)


def flow_sigmas(n: int, shift: float = 3.0) -> list[float]:
    times = [1 - k / n for k in range(n + 1)]
    return [shift * t / (1 + (shift - 1) * t) for t in times]


def start(sigma_max: float, seed: int = 1, shape=SHAPE) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * sigma_max


def gaussian_denoiser(x, sigma: float):
    return (S ** 2 * x + sigma ** 2 * MU) / (S ** 2 + sigma ** 2)


def gaussian_ode(x_start, sigma_start: float, sigma_end: float):
    """The exact probability-flow ODE solution for N(μ, s²) data: x - μ scales with sqrt(s² + σ²)."""
    return MU + (x_start - MU) * math.sqrt(S ** 2 + sigma_end ** 2) / math.sqrt(S ** 2 + sigma_start ** 2)


def flow_gaussian_denoiser(x, sigma: float):
    """E[x0 | x] for x = (1-σ) x0 + σ ε and x0 ~ N(μ, s²)."""
    alpha = 1 - sigma
    return MU + alpha * S ** 2 / (alpha ** 2 * S ** 2 + sigma ** 2) * (x - alpha * MU)


def flow_gaussian_ode(x_start, sigma_start: float, sigma_end: float = 0.0):
    """The flow ODE keeps x's standard score (x - (1-σ) μ) / sqrt((1-σ)² s² + σ²)."""
    def spread(sigma):
        return math.sqrt((1 - sigma) ** 2 * S ** 2 + sigma ** 2)

    return (1 - sigma_end) * MU + (x_start - (1 - sigma_start) * MU) * spread(sigma_end) / spread(sigma_start)


class Counted:
    """A denoiser that counts its calls and checks it is handed a Python float σ."""

    def __init__(self, denoiser):
        self.denoiser, self.sigmas = denoiser, []

    def __call__(self, x, sigma):
        assert isinstance(sigma, float)
        self.sigmas.append(sigma)
        return self.denoiser(x, sigma)


class FixedNoise:
    """A context's noise source that counts its calls and hands back one tensor made beforehand."""

    def __init__(self, shape=SHAPE):
        self.noise = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        self.calls: list[tuple[float, float]] = []

    def __call__(self, sigma: float, sigma_next: float) -> torch.Tensor:
        self.calls.append((sigma, sigma_next))
        return self.noise


def forbid_global_rng(monkeypatch):
    """From here on every global-RNG draw fails the test: samplers take noise only from context.noise."""
    def refuse(*args, **kwargs):
        raise AssertionError("a sampler drew from torch's global RNG")

    for name in ("randn", "randn_like", "rand", "rand_like", "randint", "randint_like", "normal", "bernoulli"):
        monkeypatch.setattr(torch, name, refuse)
    monkeypatch.setattr(torch.Tensor, "normal_", refuse)
    monkeypatch.setattr(torch.Tensor, "uniform_", refuse)


# ----- the protocol: calls, noise, the driver -----

@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.parametrize("flow", [False, True])
def test_one_yield_is_one_model_call_and_noise_comes_only_from_the_context(name, steps, flow, monkeypatch):
    sampler, calls, draws = SAMPLERS[name]
    sigmas = flow_sigmas(steps) if flow else karras(steps)
    x0 = torch.full(SHAPE, 0.25, dtype=torch.float64)
    model, noise = Counted(lambda x, sigma: x0), FixedNoise()
    run_context = context(noise, flow=flow, sigma_min=sigmas[-2], sigma_max=sigmas[0], options={"s_churn": 1.0})
    forbid_global_rng(monkeypatch)
    run_with(model, sampler, x0 + sigmas[0], sigmas, run_context)
    assert len(model.sigmas) == calls(steps)
    assert len(noise.calls) == draws(steps)


def test_the_adaptive_solvers_calls_are_order_times_its_attempts(monkeypatch):
    x_start, noise = start(SIGMA_MAX), FixedNoise()
    forbid_global_rng(monkeypatch)
    for order, eta in ((2, 0.0), (3, 0.0), (3, 1.0)):
        model = Counted(gaussian_denoiser)
        run_with(model, dpm_solver.sample_dpm_adaptive, x_start, karras(10),
                 context(noise, options={"order": order}, eta=eta))
        assert len(model.sigmas) % order == 0 and len(model.sigmas) >= 3 * order
        assert max(model.sigmas) == pytest.approx(SIGMA_MAX) and min(model.sigmas) > SIGMA_MIN * 0.999


def test_brownian_samplers_ask_for_the_increment_of_each_step():
    noise = CountingNoise()
    sigmas = karras(6)
    run_with(gaussian_denoiser, sde.sample_dpmpp_2m_sde, start(SIGMA_MAX), sigmas, context(noise))
    assert noise.calls == list(zip(sigmas[:-2], sigmas[1:-1]))
    noise = CountingNoise()
    run_with(gaussian_denoiser, sde.sample_dpmpp_sde, start(SIGMA_MAX), sigmas, context(noise))
    # Two draws a step, both from σ_i: to the intermediate σ_s, then to σ_i+1.
    assert [a for a, _ in noise.calls] == [s for s in sigmas[:-2] for _ in range(2)]
    assert [b for _, b in noise.calls[1::2]] == sigmas[1:-1]
    assert all(sigmas[i + 1] < noise.calls[2 * i][1] < sigmas[i] for i in range(len(sigmas) - 2))


def test_eta_zero_sdes_draw_nothing_but_dpmpp_sde_draws_as_k_diffusion_does():
    for sampler, draws in ((sde.sample_dpmpp_2m_sde, 0), (sde.sample_dpmpp_3m_sde, 0), (sde.sample_dpmpp_sde, 10)):
        noise = CountingNoise()
        run_with(gaussian_denoiser, sampler, start(SIGMA_MAX), karras(6), context(noise, eta=0.0))
        assert len(noise.calls) == draws


def test_a1111_options_reach_the_samplers():
    sigmas, x_start = karras(8), start(SIGMA_MAX)

    def run(sampler, **fields):
        return run_with(gaussian_denoiser, sampler, x_start, sigmas, context(CountingNoise(4), **fields))

    heun = run(sde.sample_dpmpp_2m_sde, options={"solver_type": "heun"})
    torch.testing.assert_close(run(sde.sample_dpmpp_2m_sde_heun), heun)
    assert not torch.allclose(run(sde.sample_dpmpp_2m_sde), heun)
    with pytest.raises(ValueError, match="solver_type"):
        run(sde.sample_dpmpp_2m_sde, options={"solver_type": "euler"})
    assert not torch.allclose(run(sde.sample_dpmpp_sde, options={"r": 0.3}), run(sde.sample_dpmpp_sde))
    assert not torch.allclose(run(kd.sample_euler_ancestral, s_noise=0.5), run(kd.sample_euler_ancestral))
    assert not torch.allclose(run(kd.sample_lms, options={"order": 2}), run(kd.sample_lms))
    # An explicit restart_list: from σ ≈ 0.5 back up to σ ≈ 5, twice, in 4-σ Karras runs.
    plan = kd.restart_plan(sigmas, {0.5: [4, 2, 5.0]})
    assert len(plan) == len(sigmas) - 1 + 2 * 3


def test_flow_sdes_start_from_comfyuis_offset_sigma_instead_of_one():
    fields = {"noise": CountingNoise(), "flow": True}
    assert sde.flow_sigmas([1.0, 0.5, 0.0], SamplerContext(options={"shift": 3.0}, **fields))[0] == \
        pytest.approx(3 * 0.9999 / (1 + 2 * 0.9999))
    assert sde.flow_sigmas([1.0, 0.5, 0.0], SamplerContext(options={"first_sigma_offset": 0.99}, **fields)) == \
        [0.99, 0.5, 0.0]
    assert sde.flow_sigmas([0.9, 0.5, 0.0], SamplerContext(**fields)) == [0.9, 0.5, 0.0]
    model = Counted(flow_gaussian_denoiser)
    run_with(model, sde.sample_dpmpp_2m_sde, start(1.0), [1.0, 0.5, 0.0], SamplerContext(**fields))
    assert model.sigmas == [pytest.approx(0.9999), 0.5]


def test_run_with_answers_each_yield_and_returns_the_sample():
    def two_calls(x, sigmas, context):
        first = yield x, sigmas[0]
        second = yield first + 1, sigmas[1]
        return second * 10

    seen = []
    result = run_with(lambda x, s: (seen.append((float(x), s)), x * 2)[1], two_calls, torch.tensor(1.0),
                      [3.0, 1.0], context())
    assert seen == [(1.0, 3.0), (3.0, 1.0)] and float(result) == 60.0


# ----- landing on the data -----

@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("flow", [False, True])
def test_every_sampler_lands_on_a_single_data_point(name, flow):
    x0 = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(SHAPE)
    sigmas = flow_sigmas(9) if flow else karras(9)
    x_start = x0 * (1 - sigmas[0]) + start(sigmas[0]) if flow else x0 + start(sigmas[0])
    # DPM fast / adaptive stop at σ_min, and with eta > 0 add noise there: eta 0 for them.
    fields = {"eta": 0.0} if name in RANGE_ONLY else {}
    result = run_with(lambda x, sigma: x0, ALL[name], x_start, sigmas,
                      context(flow=flow, sigma_min=sigmas[-2], sigma_max=sigmas[0], **fields))
    if name in RANGE_ONLY:
        # With D constant, x - x0* shrinks in proportion to σ, on flow models too.
        torch.testing.assert_close(result, x0 + (x_start - x0) * sigmas[-2] / sigmas[0])
    else:
        torch.testing.assert_close(result, x0)


DETERMINISTIC = {
    "euler": ({}, 1), "heun": ({}, 2), "dpm_2": ({}, 2), "lms": ({}, 2), "dpmpp_2m": ({}, 2),
    "euler_ancestral": ({"eta": 0.0}, 1), "dpm_2_ancestral": ({"eta": 0.0}, 2),
    "dpmpp_2s_ancestral": ({"eta": 0.0}, 2), "dpmpp_sde": ({"eta": 0.0}, 2), "dpmpp_2m_sde": ({"eta": 0.0}, 2),
    "dpmpp_2m_sde_heun": ({"eta": 0.0}, 2), "dpmpp_3m_sde": ({"eta": 0.0}, 2),
}


def ode_error(name: str, steps: int, flow: bool = False) -> float:
    """How far a deterministic sampler lands from the exact answer. All but LMS end with x = D(x, σ_last)
    (an Euler step to 0), so the exact answer for them is the ODE solution at σ_last, denoised."""
    fields, _ = DETERMINISTIC[name]
    # On flow models a Karras-spaced σ list: shifted-uniform time keeps its last steps a fixed ratio in σ
    # however many steps there are, which hides the order of convergence until very many steps.
    sigmas = kd.karras_sigmas(steps, 0.02, 0.98) if flow else karras(steps)
    x_start = start(sigmas[0])
    denoiser, ode = (flow_gaussian_denoiser, flow_gaussian_ode) if flow else (gaussian_denoiser, gaussian_ode)
    if name == "lms":
        expected = ode(x_start, sigmas[0], 0.0)
    else:
        expected = denoiser(ode(x_start, sigmas[0], sigmas[-2]), sigmas[-2])
    result = run_with(denoiser, ALL[name], x_start, sigmas, context(flow=flow, **fields))
    return float((result - expected).abs().max())


@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_deterministic_samplers_converge_to_the_gaussian_ode_solution(name):
    order = DETERMINISTIC[name][1]
    coarse, fine = ode_error(name, 12), ode_error(name, 48)
    # Four times the steps: first order gains about 4x, second order about 16x.
    assert fine < coarse / (3 if order == 1 else 10)
    assert fine < (5e-2 if order == 1 else 5e-3)


@pytest.mark.parametrize("name", ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde",
                                  "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde", "dpm_2", "dpmpp_2m"])
def test_flow_forms_at_eta_zero_converge_to_the_flow_ode_solution(name):
    order = DETERMINISTIC[name][1]
    coarse, fine = ode_error(name, 12, flow=True), ode_error(name, 48, flow=True)
    assert fine < coarse / (3 if order == 1 else 10)
    assert fine < (5e-2 if order == 1 else 3e-3)


@pytest.mark.parametrize("name", ["heun", "dpm_2", "dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde"])
def test_second_order_samplers_at_high_steps_agree_with_euler_at_very_high_steps(name):
    fields, _ = DETERMINISTIC[name]
    x_start = start(SIGMA_MAX)
    euler = run_with(gaussian_denoiser, kd.sample_euler, x_start, karras(4000), context())
    result = run_with(gaussian_denoiser, ALL[name], x_start, karras(100), context(**fields))
    torch.testing.assert_close(result, euler, atol=1.5e-3, rtol=0)


@pytest.mark.parametrize("name", ["dpm_fast", "dpm_adaptive"])
def test_dpm_solver_reaches_the_ode_solution_at_sigma_min(name):
    x_start = start(SIGMA_MAX)
    expected = gaussian_ode(x_start, SIGMA_MAX, SIGMA_MIN)
    # Tighter than the adaptive solver's defaults (rtol 0.05, atol 0.0078), which allow a few percent.
    run_context = context(eta=0.0, options={"rtol": 1e-4, "atol": 1e-5})
    result = run_with(gaussian_denoiser, ALL[name], x_start, karras(30), run_context)
    torch.testing.assert_close(result, expected, atol=2e-3, rtol=0)


def test_restart_with_twenty_steps_and_more_goes_back_up_and_keeps_the_step_count():
    for steps, times in ((20, 1), (40, 2)):
        plan = kd.restart_plan(karras(steps))
        assert len(plan) == steps
        jumps = [k for k in range(1, len(plan)) if plan[k][0] > plan[k - 1][1]]
        assert len(jumps) == times
        # From σ ≈ 0.1 back up to σ ≈ 2 along Karras σs.
        assert all(plan[k][0] == pytest.approx(2.0, rel=0.35) for k in jumps)
        assert all(plan[k - 1][1] == pytest.approx(0.1, rel=0.35) for k in jumps)
        noise, model = CountingNoise(), Counted(gaussian_denoiser)
        run_with(model, kd.sample_restart, start(SIGMA_MAX), karras(steps), context(noise))
        assert len(model.sigmas) == 2 * steps - 1 and len(noise.calls) == times


# ----- ancestral samplers at eta 0 are their deterministic counterparts (k-diffusion's definitions) -----

@pytest.mark.parametrize("ancestral, plain, flow", [
    (kd.sample_euler_ancestral, kd.sample_euler, False),
    (kd.sample_dpm_2_ancestral, kd.sample_dpm_2, False),
    (sde.sample_dpmpp_2m_sde, kd.sample_dpmpp_2m, False),  # the midpoint 2M SDE at eta 0 is DPM++ 2M
    (kd.sample_euler_ancestral, kd.sample_euler, True),
    (kd.sample_dpm_2_ancestral, kd.sample_dpm_2, True),
])
def test_ancestral_samplers_at_eta_zero_are_their_ode_counterparts(ancestral, plain, flow):
    sigmas = flow_sigmas(8) if flow else karras(8)
    denoiser = flow_gaussian_denoiser if flow else gaussian_denoiser
    x_start = start(sigmas[0])
    expected = run_with(denoiser, plain, x_start, sigmas, context(flow=flow))
    result = run_with(denoiser, ancestral, x_start, sigmas, context(flow=flow, eta=0.0))
    torch.testing.assert_close(result, expected)


# ----- the stochastic samplers sample the data distribution -----

def brownian_noise(sigmas: list[float], shape, seed: int):
    """k-diffusion's BrownianTreeNoiseSampler normalisation on a torchsde tree (one tree for the batch)."""
    import torchsde

    low, high = min(s for s in sigmas if s > 0), max(sigmas)
    tree = torchsde.BrownianTree(low, torch.zeros(shape, dtype=torch.float64), high, entropy=seed)

    def increment(sigma, sigma_next):
        t0, t1 = sorted((max(sigma_next, low), min(sigma, high)))
        return tree(t0, t1) * (1 if sigma < sigma_next else -1) / abs(t1 - t0) ** 0.5

    return increment


@pytest.mark.parametrize("name", ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde",
                                  "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde", "restart"])
@pytest.mark.parametrize("flow", [False, True])
def test_stochastic_samplers_reach_the_data_distribution(name, flow):
    if flow and name == "restart":
        pytest.skip("Restart has no flow form (ComfyUI has no Restart)")
    shape, steps = (4096,), 100 if name == "euler_ancestral" else 40
    # Flow: from σ = 1 (ComfyUI's σ offset included) along Karras-spaced σs, which converge evenly.
    sigmas = [1.0] + kd.karras_sigmas(steps - 1, 0.01, 0.98) if flow else karras(steps)
    denoiser = flow_gaussian_denoiser if flow else gaussian_denoiser
    brownian = name.startswith("dpmpp_") and "sde" in name
    noise = brownian_noise(sigmas, shape, 5) if brownian else CountingNoise(5, shape)
    result = run_with(denoiser, ALL[name], start(sigmas[0], 2, shape), sigmas,
                      context(noise, flow=flow, options={"shift": 3.0}))
    assert float(result.mean()) == pytest.approx(MU, abs=0.03)
    assert float(result.std()) == pytest.approx(S, rel=0.04)


# ----- against the repository's independent k-diffusion reference -----

class ReferenceNoise:
    """The reference's noise interface (randn_like, brownian) fed by the same stream as our context."""

    def __init__(self, stream: CountingNoise):
        self.stream = stream

    def randn_like(self, x):
        return self.stream(-1.0, -1.0)

    def brownian(self, x, sigmas):
        return lambda sigma, sigma_next: self.stream(float(sigma), float(sigma_next))


@pytest.mark.parametrize("name", ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m",
                                  "dpmpp_sde", "dpmpp_2m_sde"])
def test_each_sampler_matches_the_k_diffusion_reference_with_the_same_noise(name):
    from benchmarks import kdiffusion_reference as reference

    sigmas = karras(10)
    x_start = start(SIGMA_MAX)
    theirs = getattr(reference, name)(lambda x, sigma: gaussian_denoiser(x, float(sigma)), x_start,
                                      torch.tensor(sigmas, dtype=torch.float64), ReferenceNoise(CountingNoise(9)))
    # Euler, Heun and DPM2 draw their (unused, churn-free) noise where the reference draws none: no matter.
    result = run_with(gaussian_denoiser, ALL[name], x_start, sigmas, context(CountingNoise(9)))
    torch.testing.assert_close(result, theirs, atol=1e-9, rtol=1e-9)

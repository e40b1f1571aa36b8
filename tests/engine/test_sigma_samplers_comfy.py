"""ComfyUI's own samplers in σ space, driven with an exact Gaussian denoiser: convergence, noise, calls, CFG++."""

import math

import pytest
import torch

from diffusers_tui.engine.sampling.sigma import samplers_kdiffusion as kdiffusion
from diffusers_tui.engine.sampling.sigma.context import SamplerContext
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas, time_snr_shift
from diffusers_tui.engine.sampling.sigma import catalogue
from diffusers_tui.engine.sampling.sigma.samplers_comfy_base import offset_first_sigma, percent_to_sigma
from diffusers_tui.engine.sampling.sigma.samplers_multistep import _variable_step_weights, deis_coefficients
from diffusers_tui.engine.sampling.sigma.samplers_sa_solver import adams_weights
from diffusers_tui.engine.sampling.sigma.samplers_uni_pc import FINAL_SIGMA

#: comfy/samplers.py, newest: KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"] (SAMPLER_NAMES).
COMFYUI_SAMPLER_NAMES = (
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
    "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "cfgpp_ud10_ab", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2")
KDIFFUSION = {"euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
              "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde"}

#: The catalogue's ComfyUI ids, and the ones whose sampler is written for ComfyUI alone (not k-diffusion's,
#: not an alias: "ddim" is Euler, a _gpu id its twin's sampler with the tree on the device).
NAMED = {named.name: named for named in catalogue.COMFYUI_SAMPLERS}
COMFY_SAMPLERS = {name: named.function for name, named in NAMED.items()
                  if name not in KDIFFUSION and name != "ddim" and not name.endswith("_gpu")}
CFG_PP = {name for name, named in NAMED.items() if named.cfgpp}

MU, S = 0.3, 0.5  # the data: N(μ, s²)
MU_U, S_U = -0.2, 0.8  # the "unconditional" data, for CFG++
Z = torch.linspace(-2.0, 2.0, 6, dtype=torch.float64).reshape(2, 3)


def ve_denoiser(mu=MU, s=S):
    """The exact D(x, σ) = E[x0 | x] for x = x0 + σε, x0 ~ N(μ, s²)."""
    return lambda x, sigma: (s * s * x + sigma * sigma * mu) / (s * s + sigma * sigma)


def flow_denoiser(mu=MU, s=S):
    """The exact D(x, σ) for x = (1-σ)x0 + σε."""
    return lambda x, sigma: mu + (1 - sigma) * s * s * (x - (1 - sigma) * mu) / ((1 - sigma) ** 2 * s * s + sigma**2)


def ve_solution(x, sigma):
    """The probability-flow ODE carried from σ to 0: x - μ scales by s/√(s² + σ²)."""
    return MU + (x - MU) * S / math.sqrt(S * S + sigma * sigma)


def flow_solution(x, sigma):
    return MU + S * (x - (1 - sigma) * MU) / math.sqrt((1 - sigma) ** 2 * S * S + sigma**2)


def karras(steps, sigma_min=0.002, sigma_max=10.0, rho=7.0):
    ramp = [i / (steps - 1) for i in range(steps)]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(hi + t * (lo - hi)) ** rho for t in ramp] + [0.0]


def flow_sigmas(steps, shift=3.0):
    """1.0 ... 0, shifted as SD3 and Flux shift their time."""
    return [float(time_snr_shift(shift, 1 - i / steps)) for i in range(steps)] + [0.0]


class Noise:
    """context.noise from a private generator, recording each draw."""

    def __init__(self, shape, seed=0):
        self.shape, self.generator, self.draws = shape, torch.Generator().manual_seed(seed), []

    def __call__(self, sigma, sigma_next):
        self.draws.append((sigma, sigma_next))
        return torch.randn(self.shape, generator=self.generator, dtype=torch.float64)


def drive(sampler, x, sigmas, context, denoiser, uncond=None):
    """Run a sampler generator as the bridge does: answer each (x, σ) with D(x, σ), having set the
    unconditional prediction first. Returns the final sample and the σ of every model call."""
    uncond = uncond or denoiser
    run = sampler(x, list(sigmas), context)
    calls = []
    try:
        x_eval, sigma = next(run)
        while True:
            assert isinstance(sigma, float)
            calls.append(sigma)
            context.uncond_denoised = uncond(x_eval, sigma)
            x_eval, sigma = run.send(denoiser(x_eval, sigma))
    except StopIteration as finished:
        return finished.value, calls


def context(shape=Z.shape, seed=0, **fields):
    return SamplerContext(noise=Noise(shape, seed), **fields)


def ode_error(name, steps, flow=False, **fields):
    if flow:
        out, calls = drive(COMFY_SAMPLERS[name], Z.clone(), flow_sigmas(steps), context(flow=True, **fields),
                           flow_denoiser())
        return float((out - flow_solution(Z, calls[0])).abs().max())
    x = MU + Z * math.sqrt(S * S + 100.0)
    out, _ = drive(COMFY_SAMPLERS[name], x, karras(steps), context(**fields), ve_denoiser())
    return float((out - ve_solution(x, 10.0)).abs().max())


# ----- which ids there are -----

def test_every_comfyui_sampler_id_is_in_the_catalogue_with_comfyuis_rules():
    assert [named.name for named in catalogue.COMFYUI_SAMPLERS] == list(COMFYUI_SAMPLER_NAMES)
    assert NAMED["ddim"].function is NAMED["euler"].function  # sampler_object("ddim") is ksampler("euler")
    assert {name for name, named in NAMED.items() if named.discard_penultimate} == {
        "dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}
    assert {name for name, named in NAMED.items() if named.cfgpp} == {
        "euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_2m_cfg_pp",
        "res_multistep_cfg_pp", "res_multistep_ancestral_cfg_pp", "gradient_estimation_cfg_pp", "cfgpp_ud10_ab"}
    brownian = {name for name, named in NAMED.items() if named.brownian}
    assert brownian == {f"{base}{gpu}" for base in ("dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde")
                        for gpu in ("", "_gpu")}
    assert all(NAMED[name].options["tree_on_cpu"] != name.endswith("_gpu") for name in brownian)


# ----- deterministic samplers solve the probability-flow ODE -----

#: Every id that is an ODE solver as ComfyUI runs it, plus the stochastic ones with their noise off
#: (eta 0; er_sde with SamplerER_SDE's "ODE" noise scaler), with options that differ from the default.
ODE_CASES = {
    "euler_cfg_pp": {}, "heunpp2": {}, "exp_heun_2_x0": {}, "dpmpp_2m_cfg_pp": {}, "ipndm": {}, "ipndm_v": {},
    "deis": {}, "res_multistep": {}, "res_multistep_cfg_pp": {}, "gradient_estimation": {},
    "gradient_estimation_cfg_pp": {}, "uni_pc": {}, "uni_pc_bh2": {},
    "euler_ancestral_cfg_pp": {"eta": 0.0}, "dpmpp_2s_ancestral_cfg_pp": {"eta": 0.0},
    "res_multistep_ancestral": {"eta": 0.0}, "res_multistep_ancestral_cfg_pp": {"eta": 0.0},
    "seeds_2": {"eta": 0.0}, "seeds_3": {"eta": 0.0}, "exp_heun_2_x0_sde": {"eta": 0.0},
    "dpmpp_2m_sde_heun": {"eta": 0.0}, "sa_solver": {"eta": 0.0}, "sa_solver_pece": {"eta": 0.0},
    "er_sde": {"s_noise": 0.0, "options": {"noise_scaler": lambda v: v}},
    "cfgpp_ud10_ab": {"options": {"uncond_history_weight": 0.0}},
}
EXTRA_ODE_CASES = [
    ("deis", {"options": {"deis_mode": "rhoab"}}), ("deis", {"options": {"max_order": 4}}),
    ("ipndm", {"options": {"max_order": 2}}), ("seeds_2", {"eta": 0.0, "options": {"solver_type": "phi_2"}}),
    ("sa_solver", {"eta": 0.0, "options": {"simple_order_2": True, "predictor_order": 2, "corrector_order": 2}}),
]


@pytest.mark.parametrize("name, fields", list(ODE_CASES.items()) + EXTRA_ODE_CASES)
def test_ode_samplers_converge_to_the_exact_solution_as_steps_grow(name, fields):
    errors = [ode_error(name, steps, **fields) for steps in (8, 16, 32)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.06


FLOW_FORMS = ["euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2s_ancestral_cfg_pp", "exp_heun_2_x0", "seeds_2",
              "seeds_3", "exp_heun_2_x0_sde", "dpmpp_2m_sde_heun", "sa_solver", "sa_solver_pece", "er_sde",
              "cfgpp_ud10_ab"]


@pytest.mark.parametrize("name", FLOW_FORMS)
def test_flow_forms_converge_on_a_flow_schedule_from_one(name):
    fields = {"eta": 0.0, **ODE_CASES[name]}
    # Every flow list's last step is a long one (σ 0.3 at 8 steps), so 8, 32 and 128 steps.
    errors = [ode_error(name, steps, flow=True, **fields) for steps in (8, 32, 128)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.03, errors


@pytest.mark.parametrize("name", ["heunpp2", "ipndm", "ipndm_v", "deis", "res_multistep", "gradient_estimation",
                                  "dpmpp_2m_cfg_pp", "uni_pc", "uni_pc_bh2", "ddpm", "res_multistep_ancestral"])
def test_samplers_without_a_flow_form_step_the_same_on_flow_models(name):
    outs = [drive(COMFY_SAMPLERS[name], Z.clone(), flow_sigmas(6), context(flow=flow), flow_denoiser())[0]
            for flow in (False, True)]
    assert torch.equal(*outs)


def test_flow_forms_first_call_is_offset_below_one_where_comfyui_offsets():
    offset = {"exp_heun_2_x0", "exp_heun_2_x0_sde", "seeds_2", "seeds_3", "dpmpp_2m_sde_heun", "sa_solver",
              "sa_solver_pece", "er_sde"}
    for name, sampler in COMFY_SAMPLERS.items():
        _, calls = drive(sampler, Z.clone(), flow_sigmas(4), context(flow=True), flow_denoiser())
        assert calls[0] == (pytest.approx(0.9999) if name in offset else 1.0), name
    shifted = context(flow=True, options={"model_sigmas": ModelSigmas.for_flow(3.0)})
    _, calls = drive(COMFY_SAMPLERS["seeds_2"], Z.clone(), flow_sigmas(4), shifted, flow_denoiser())
    assert calls[0] == pytest.approx(float(time_snr_shift(3.0, torch.tensor(1 - 1e-4, dtype=torch.float64))))


def test_cfgpp_ud10_ab_converges_only_without_its_unguided_slope_extrapolation():
    # Its default extrapolates the unguided slope by 0.1 of its last change at every step: a bias of
    # that order which more steps do not remove (ComfyUI's choice), so the plain ODE is not its limit.
    assert ode_error("cfgpp_ud10_ab", 64) < ode_error("cfgpp_ud10_ab", 16) < 0.2
    assert ode_error("cfgpp_ud10_ab", 256) > 0.02
    assert ode_error("cfgpp_ud10_ab", 256, options={"uncond_history_weight": 0.0}) < 0.01


# ----- model calls and noise -----

def calls_for(name, steps):
    """ComfyUI's model calls for `steps` steps on a σ list ending in 0."""
    two_stage = {"seeds_2", "exp_heun_2_x0", "exp_heun_2_x0_sde", "dpmpp_2s_ancestral_cfg_pp"}
    if name in two_stage:
        return 2 * steps - 1  # the step to σ = 0 is one call
    if name == "seeds_3":
        return 3 * steps - 2
    if name == "heunpp2":
        return 3 * steps - 3  # Heun on the second-to-last step, Euler on the last
    if name == "sa_solver_pece":
        return 2 * steps - 1  # no corrector before the first prediction
    return steps


@pytest.mark.parametrize("name", sorted(COMFY_SAMPLERS))
def test_model_calls_per_step_and_a_run_on_one_number(name):
    sigmas = karras(7)
    one = torch.zeros(1, dtype=torch.float64)  # the stand-in's dry run: one number, zero noise
    ctx = SamplerContext(noise=lambda sigma, sigma_next: torch.zeros(1, dtype=torch.float64))
    out, calls = drive(COMFY_SAMPLERS[name], one, sigmas, ctx, ve_denoiser())
    assert len(calls) == calls_for(name, 7)
    assert calls[0] == sigmas[0] and all(0 < sigma <= sigmas[0] for sigma in calls)
    assert out.shape == (1,) and torch.isfinite(out).all()


STOCHASTIC = ["euler_ancestral_cfg_pp", "dpmpp_2s_ancestral_cfg_pp", "res_multistep_ancestral",
              "res_multistep_ancestral_cfg_pp", "seeds_2", "seeds_3", "exp_heun_2_x0_sde", "dpmpp_2m_sde_heun",
              "er_sde", "sa_solver", "sa_solver_pece", "ddpm", "lcm"]


@pytest.mark.parametrize("name", sorted(COMFY_SAMPLERS))
@pytest.mark.parametrize("flow", [False, True])
def test_noise_comes_only_from_context_noise(name, flow):
    sigmas = flow_sigmas(6) if flow else karras(6)
    denoiser = flow_denoiser() if flow else ve_denoiser()
    state = torch.random.get_rng_state()
    runs = []
    for seed in (0, 0, 1):
        ctx = context(seed=seed, flow=flow, eta=1.0)
        runs.append((drive(COMFY_SAMPLERS[name], Z.clone(), sigmas, ctx, denoiser)[0], ctx.noise.draws))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is never drawn from
    assert torch.equal(runs[0][0], runs[1][0])
    if name in STOCHASTIC:
        assert runs[0][1] and not torch.equal(runs[0][0], runs[2][0])
    else:
        assert runs[0][1] == [] and torch.equal(runs[0][0], runs[2][0])


def test_heunpp2_churn_noise_comes_from_context_noise():
    state = torch.random.get_rng_state()
    ctx = context(options={"s_churn": 1.0})
    out, calls = drive(COMFY_SAMPLERS["heunpp2"], MU + Z * 10.0, karras(6), ctx, ve_denoiser())
    assert len(ctx.noise.draws) == 6 and calls[0] > karras(6)[0]  # σ_hat = σ·(1 + γ)
    assert torch.equal(torch.random.get_rng_state(), state)


CONSISTENT_SDES = ["dpmpp_2s_ancestral_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "seeds_2",
                   "seeds_3", "exp_heun_2_x0_sde", "dpmpp_2m_sde_heun", "er_sde", "sa_solver", "sa_solver_pece"]


@pytest.mark.parametrize("name", CONSISTENT_SDES + ["euler_ancestral_cfg_pp", "ddpm"])
def test_stochastic_samplers_draw_from_the_data_distribution(name):
    count = 4000
    ctx = context(shape=(count,), seed=3, eta=1.0)
    unit = torch.randn(count, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    start = MU + unit * math.sqrt(S * S + 100)
    out, _ = drive(COMFY_SAMPLERS[name], start, karras(64), ctx, ve_denoiser())
    first_order = name in ("euler_ancestral_cfg_pp", "ddpm")  # ancestral Euler: its variance lags at 64 steps
    assert abs(float(out.mean()) - MU) < 0.03
    assert abs(float(out.std()) - S) < (0.06 if first_order else 0.03)


@pytest.mark.parametrize("name", ["dpmpp_2s_ancestral_cfg_pp", "seeds_2", "seeds_3", "exp_heun_2_x0_sde", "er_sde",
                                  "sa_solver", "dpmpp_2m_sde_heun"])
def test_flow_forms_of_stochastic_samplers_draw_from_the_data_distribution(name):
    count = 4000
    ctx = context(shape=(count,), seed=5, eta=1.0, flow=True)
    start = torch.randn(count, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    out, _ = drive(COMFY_SAMPLERS[name], start, flow_sigmas(64), ctx, flow_denoiser())
    assert abs(float(out.mean()) - MU) < 0.03
    assert abs(float(out.std()) - S) < 0.04


def test_lcm_renoises_the_denoised_estimate_to_the_next_sigma():
    for flow in (False, True):
        sigmas = [0.9, 0.5, 0.0] if flow else [10.0, 2.0, 0.0]
        ctx = SamplerContext(noise=lambda sigma, sigma_next: torch.ones(2, 3, dtype=torch.float64), flow=flow)
        seen = []
        denoiser = lambda x, sigma: seen.append(x) or torch.full_like(x, 0.25)  # noqa: E731
        out, _ = drive(COMFY_SAMPLERS["lcm"], Z.clone(), sigmas, ctx, denoiser, uncond=lambda x, sigma: x)
        expected = 0.5 * 1 + (1 - 0.5) * 0.25 if flow else 2.0 * 1 + 0.25
        assert torch.allclose(seen[1], torch.full_like(Z, expected)) and torch.equal(out, torch.full_like(Z, 0.25))


# ----- CFG++ -----

PLAIN_COUNTERPARTS = [
    ("euler_cfg_pp", kdiffusion.sample_euler, False), ("euler_cfg_pp", kdiffusion.sample_euler, True),
    ("euler_ancestral_cfg_pp", kdiffusion.sample_euler_ancestral, False),
    ("dpmpp_2m_cfg_pp", kdiffusion.sample_dpmpp_2m, False),
    ("dpmpp_2s_ancestral_cfg_pp", kdiffusion.sample_dpmpp_2s_ancestral, False),
    ("dpmpp_2s_ancestral_cfg_pp", kdiffusion.sample_dpmpp_2s_ancestral_RF, True),
    ("res_multistep_cfg_pp", COMFY_SAMPLERS["res_multistep"], False),
    ("res_multistep_ancestral_cfg_pp", COMFY_SAMPLERS["res_multistep_ancestral"], False),
    ("res_multistep_ancestral_cfg_pp", COMFY_SAMPLERS["res_multistep_ancestral"], True),
    ("gradient_estimation_cfg_pp", COMFY_SAMPLERS["gradient_estimation"], False),
]


@pytest.mark.parametrize("name, plain, flow", PLAIN_COUNTERPARTS)
def test_cfgpp_with_the_unguided_estimate_equal_to_the_guided_is_its_plain_sampler(name, plain, flow):
    sigmas = flow_sigmas(9) if flow else karras(9)
    denoiser = flow_denoiser() if flow else ve_denoiser()
    x = Z.clone() if flow else MU + Z * 10.0
    for eta in (1.0, 0.5):
        cfgpp, _ = drive(COMFY_SAMPLERS[name], x, sigmas, context(seed=2, flow=flow, eta=eta), denoiser)
        reference, _ = drive(plain, x, sigmas, context(seed=2, flow=flow, eta=eta), denoiser)
        assert torch.allclose(cfgpp, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(CFG_PP))
@pytest.mark.parametrize("flow", [False, True])
def test_cfgpp_samplers_read_the_unconditional_prediction(name, flow):
    sigmas = flow_sigmas(8) if flow else karras(8)
    guided = flow_denoiser() if flow else ve_denoiser()
    unguided = flow_denoiser(MU_U, S_U) if flow else ve_denoiser(MU_U, S_U)
    same, _ = drive(COMFY_SAMPLERS[name], Z.clone(), sigmas, context(flow=flow), guided)
    mixed, _ = drive(COMFY_SAMPLERS[name], Z.clone(), sigmas, context(flow=flow), guided, uncond=unguided)
    assert torch.isfinite(mixed).all() and not torch.allclose(same, mixed)
    with pytest.raises(ValueError, match="unconditional"):
        run = COMFY_SAMPLERS[name](Z.clone(), sigmas, SamplerContext(noise=Noise(Z.shape), flow=flow))
        x, sigma = next(run)
        run.send(guided(x, sigma))


def test_cfgpp_euler_takes_the_guided_estimate_for_the_image_and_the_unguided_for_the_noise():
    sigma, sigma_next = 4.0, 1.0
    guided, unguided = (lambda x, s: torch.full_like(x, 0.5)), (lambda x, s: torch.full_like(x, -1.0))
    out, _ = drive(COMFY_SAMPLERS["euler_cfg_pp"], Z.clone(), [sigma, sigma_next], context(), guided, uncond=unguided)
    assert torch.allclose(out, 0.5 + sigma_next * (Z - -1.0) / sigma)
    out, _ = drive(COMFY_SAMPLERS["euler_cfg_pp"], Z.clone(), [sigma, 0.0], context(), guided, uncond=unguided)
    assert torch.equal(out, torch.full_like(Z, 0.5))


# ----- pieces -----

def test_uni_pc_stops_at_its_final_sigma_and_one_step_takes_no_step():
    sigmas = karras(5)
    _, calls = drive(COMFY_SAMPLERS["uni_pc"], MU + Z * 10.0, sigmas, context(), ve_denoiser())
    assert calls == sigmas[:-1]  # the model never sees the final σ (0.001 in place of 0)
    assert FINAL_SIGMA == 0.001
    x = MU + Z * 10.0
    out, calls = drive(COMFY_SAMPLERS["uni_pc"], x, [10.0, 0.0], context(), ve_denoiser())
    # ComfyUI's order is min(3, steps - 1) = 0: one model call, then its VP x read back at σ = 0.001.
    assert calls == [10.0] and torch.allclose(out, x * math.sqrt((1 + 0.001**2) / (1 + 10.0**2)))


@pytest.mark.parametrize("mode", ["tab", "rhoab"])
def test_deis_weights_integrate_dsigma_over_each_step(mode):
    sigmas = karras(10)
    table = deis_coefficients(sigmas, 3, mode)
    assert table[0] == [] and table[-1] == []  # the first step and the step to 0 are Euler
    for i, weights in enumerate(table[1:-1], start=1):
        assert len(weights) == min(i + 1, 3)
        assert sum(weights) == pytest.approx(sigmas[i + 1] - sigmas[i], rel=1e-3)


def test_ipndm_v_weights_are_adams_bashforth_on_even_steps_up_to_order_3():
    assert _variable_step_weights([-1.0, -1.0]) == pytest.approx((3 / 2, -1 / 2))
    assert _variable_step_weights([-1.0, -1.0, -1.0]) == pytest.approx((23 / 12, -16 / 12, 5 / 12))
    four = _variable_step_weights([-1.0] * 4)  # diff-sampler's order 4: consistent, not AB4's 55/24...
    assert sum(four) == pytest.approx(1.0) and four[0] != pytest.approx(55 / 24)


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_sa_solver_weights_integrate_the_exponential_over_the_step(tau):
    nodes, lam_s, lam_t, sigma_next = [-1.2, -0.7, -0.3], -0.3, 0.2, math.exp(-0.2)
    whole = -math.expm1(-(1 + tau**2) * (lam_t - lam_s))  # α_t = 1 off flow models
    for order in (1, 2, 3):
        assert sum(adams_weights(sigma_next, nodes[-order:], lam_s, lam_t, tau)) == pytest.approx(whole)
    simple = adams_weights(sigma_next, nodes[-2:], lam_s, lam_t, tau, simple_order_2=True)
    assert sum(simple) == pytest.approx(whole)


def test_percent_to_sigma_follows_the_model_the_bridge_names():
    flow = SamplerContext(noise=Noise(Z.shape), flow=True, options={"model_sigmas": ModelSigmas.for_flow(3.0)})
    assert percent_to_sigma(flow, 0.2) == pytest.approx(3 * 0.8 / (1 + 2 * 0.8))
    assert percent_to_sigma(SamplerContext(noise=Noise(Z.shape), flow=True), 0.2) == pytest.approx(0.8)
    by_shift = SamplerContext(noise=Noise(Z.shape), flow=True, options={"shift": 3.0})
    assert percent_to_sigma(by_shift, 0.2) == pytest.approx(percent_to_sigma(flow, 0.2))
    named = SamplerContext(noise=Noise(Z.shape), flow=True, options={"first_sigma_offset": 0.995})
    assert offset_first_sigma([1.0, 0.5, 0.0], named) == [0.995, 0.5, 0.0]
    discrete = ModelSigmas.from_betas(torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2)
    eps = SamplerContext(noise=Noise(Z.shape), options={"model_sigmas": discrete})
    assert percent_to_sigma(eps, 0.5) == pytest.approx(discrete.sigma(499.5))
    edm = SamplerContext(noise=Noise(Z.shape), sigma_min=0.002, sigma_max=80.0)
    assert percent_to_sigma(edm, 0.5) == pytest.approx(math.sqrt(0.002 * 80.0))
    called = SamplerContext(noise=Noise(Z.shape), options={"percent_to_sigma": lambda p: 7.0 * p})
    assert percent_to_sigma(called, 0.5) == 3.5
    assert offset_first_sigma([1.0, 0.5, 0.0], flow) == [pytest.approx(float(time_snr_shift(3.0, 1 - 1e-4))), 0.5, 0.0]
    assert offset_first_sigma([14.6, 0.5, 0.0], eps) == [14.6, 0.5, 0.0]

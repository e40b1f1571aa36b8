"""The named σ schedules against their published formulas and tables, for SD 1.5 and a shifted flow model."""

import inspect
import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffusers_tui.engine.sampling.sigma import schedules as S
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas
from diffusers_tui.engine.sampling.sigma.schedules import SCHEDULES, find_schedule

SD15 = ModelSigmas.from_betas(torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2)
FLOW = ModelSigmas.for_flow(3.0)
MODELS = {"sd15": SD15, "flow": FLOW}

# NVIDIA's published 10-step Align Your Steps tables (AlignYourSteps/howto.html) and the GITS row for
# coeff 1.20 at 10 steps (zju-pi/diff-sampler), written out here, not read from the module.
AYS_SD15 = [14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
            0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582]
AYS_SDXL = [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
            0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582]
# A1111 1.10's own 3-decimal copies (modules/sd_schedulers.py), which are not the above rounded.
A1111_AYS_SD15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
GITS_120_10 = [14.61464119, 5.85520077, 2.84484982, 1.67050016, 1.08895338, 0.74807048, 0.50118381,
               0.32104823, 0.19894916, 0.09824532, 0.02916753]


def close(actual, expected, rel=2e-6, abs_=1e-7):
    expected = torch.as_tensor(np.asarray(expected, dtype=np.float64), dtype=torch.float32)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, rtol=rel, atol=abs_), (actual - expected).abs().max()


def shift3(t):
    return 3.0 * t / (1 + 2.0 * t)


def table_sigma(model, t):
    """k-diffusion's t_to_sigma written from its definition: log σ linear between training steps."""
    return np.exp(np.interp(t, np.arange(len(model.sigmas)), np.log(model.sigmas.double().numpy())))


def expected_length(key, steps):
    if key in ("a1111_ddim", "comfy_ddim_uniform"):
        return len(range(1, 1000, max(1000 // steps, 1))) + 1
    if key == "comfy_laplace":
        return steps
    if key == "comfy_sd_turbo":
        return min(steps, 10) + 1
    return steps + 1


# --- shape of every list ---------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [2, 10, 25])
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("key", SCHEDULES)
def test_every_schedule_is_a_descending_float32_list_of_the_tools_length(key, model_name, steps):
    sigmas = SCHEDULES[key].function(MODELS[model_name], steps)
    assert sigmas.dtype == torch.float32 and sigmas.device.type == "cpu" and sigmas.ndim == 1
    assert torch.isfinite(sigmas).all()
    assert (sigmas[1:] < sigmas[:-1]).all(), sigmas
    if key == "comfy_beta":  # drops repeated timesteps, never adds
        assert len(sigmas) <= steps + 1
    else:
        assert len(sigmas) == expected_length(key, steps)
    if key == "a1111_kl_optimal":  # A1111 ends KL Optimal at σ_min, appends no 0
        assert sigmas[-1].item() == pytest.approx(MODELS[model_name].sigma_min, rel=1e-5)
    elif key == "comfy_laplace":  # get_sigmas_laplace appends no 0: it ends at the node's σ_min
        assert sigmas[-1].item() == pytest.approx(0.0291675, rel=1e-6)
    else:
        assert sigmas[-1].item() == 0.0


STARTS_AT_SIGMA_MAX = ["karras", "exponential", "simple", "a1111_uniform", "a1111_polyexponential",
                       "a1111_sgm_uniform", "a1111_kl_optimal", "a1111_normal", "a1111_beta", "comfy_normal",
                       "comfy_sgm_uniform", "comfy_beta", "comfy_linear_quadratic", "comfy_kl_optimal"]


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("key", STARTS_AT_SIGMA_MAX)
def test_model_schedules_start_at_the_models_sigma_max(key, model_name):
    model = MODELS[model_name]
    assert SCHEDULES[key].function(model, 12)[0].item() == pytest.approx(model.sigma_max, rel=2e-6)


# --- both tools ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS)
def test_karras_is_the_closed_formula(model):
    n, rho = 15, 7.0
    low, high = model.sigma_min ** (1 / rho), model.sigma_max ** (1 / rho)
    expected = [(high + i / (n - 1) * (low - high)) ** rho for i in range(n)] + [0.0]
    sigmas = S.karras(model, n)
    close(sigmas, expected, rel=5e-6)
    assert sigmas[0].item() == pytest.approx(model.sigma_max, rel=1e-6)
    assert sigmas[-2].item() == pytest.approx(model.sigma_min, rel=1e-5)
    assert S.karras(model, n, rho=3.0)[5] != sigmas[5]


def test_exponential_is_geometric_and_polyexponential_at_rho_1_is_exponential():
    sigmas = S.exponential(SD15, 9)[:-1].double()
    ratios = sigmas[1:] / sigmas[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, (SD15.sigma_min / SD15.sigma_max) ** (1 / 8)), rtol=1e-5)
    close(S.a1111_polyexponential(SD15, 9), S.exponential(SD15, 9).numpy(), rel=1e-5)
    squared = S.a1111_polyexponential(SD15, 9, rho=2.0)
    assert squared[4] < sigmas[4] and squared[-2].item() == pytest.approx(SD15.sigma_min, rel=1e-5)


def test_simple_takes_every_nth_training_sigma_from_the_top():
    n = 7
    indices = [999 - int(i * 1000 / n) for i in range(n)]
    close(S.simple(SD15, n), [SD15.sigmas[i].item() for i in indices] + [0.0], rel=0)


# --- Uniform / Normal / SGM Uniform ----------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS)
def test_a1111_uniform_and_normal_are_the_table_interpolated_at_even_timesteps(model):
    n = 13
    expected = list(table_sigma(model, np.linspace(999, 0, n, dtype=np.float32).astype(np.float64))) + [0.0]
    close(S.a1111_uniform(model, n), expected, rel=1e-5)
    close(S.a1111_normal(model, n), S.a1111_uniform(model, n).numpy(), rel=1e-6)
    sgm = S.a1111_sgm_uniform(model, n)
    close(sgm, list(table_sigma(model, np.linspace(999, 0, n + 1)[:-1])) + [0.0], rel=1e-5)
    assert sgm[-2] > model.sigma_min * 1.01  # SGM never samples at σ_min


def test_sgm_uniform_agrees_across_tools_for_sd_but_not_for_flow():
    close(S.comfy_sgm_uniform(SD15, 12), S.a1111_sgm_uniform(SD15, 12).numpy(), rel=1e-6)
    close(S.comfy_normal(SD15, 12), S.a1111_normal(SD15, 12).numpy(), rel=1e-6)
    # ComfyUI's flow timestep is σ·1000 and σ(t) = shift(t/1000); A1111 indexes the table from 999 to 0.
    n = 6
    t = np.linspace(1000.0, 1000.0 * FLOW.sigma_min, n + 1)[:-1]
    close(S.comfy_sgm_uniform(FLOW, n), list(shift3(t / 1000.0)) + [0.0], rel=1e-5)
    assert not torch.allclose(S.comfy_sgm_uniform(FLOW, n), S.a1111_sgm_uniform(FLOW, n), rtol=1e-4)


def test_comfy_normal_on_a_shifted_flow_model_ends_at_shifted_sigma_min():
    # timestep(σ) = σ·1000 is not the inverse of σ(t) = shift(t/1000): the last σ is shift(σ_min).
    sigmas = S.comfy_normal(FLOW, 8)
    assert sigmas[0].item() == pytest.approx(1.0)
    assert sigmas[-2].item() == pytest.approx(shift3(FLOW.sigma_min), rel=1e-5)
    assert sigmas[-2].item() > 2 * FLOW.sigma_min


def test_comfy_normal_and_ddim_uniform_take_one_more_step_when_the_table_reaches_zero():
    table = torch.cat([torch.tensor([1e-7, 2e-7]), torch.logspace(-2, 1, 98)])
    model = ModelSigmas(table)
    normal = S.comfy_normal(model, 10)
    assert len(normal) == 11 and 0 < normal[-1].item() < 1e-5  # σ of the last step, no 0 appended
    ddim = S.comfy_ddim_uniform(model, 10)
    assert len(ddim) == len(range(1, 100, 100 // 11)) and ddim[-1].item() == pytest.approx(2e-7)
    assert len(S.a1111_ddim(model, 10)) == len(range(1, 100, 10)) + 1


# --- DDIM ------------------------------------------------------------------------------------------


def test_ddim_picks_every_strideth_training_sigma_from_index_1_and_can_overshoot():
    twenty = S.a1111_ddim(SD15, 20)
    close(twenty, [SD15.sigmas[i].item() for i in range(951, 0, -50)] + [0.0], rel=0)
    assert len(S.a1111_ddim(SD15, 30)) == 32  # 1000 // 30 = 33 gives 31 σ: a 31-step run
    for steps in (7, 20, 30):
        close(S.comfy_ddim_uniform(SD15, steps), S.a1111_ddim(SD15, steps).numpy(), rel=0)


# --- KL optimal ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS)
def test_kl_optimal_is_even_in_arctan_sigma_and_the_tools_end_differently(model):
    n = 10
    lo, hi = math.atan(model.sigma_min), math.atan(model.sigma_max)
    a1111 = S.a1111_kl_optimal(model, n)
    close(a1111, [math.tan(i / n * lo + (1 - i / n) * hi) for i in range(n + 1)], rel=1e-5)
    comfy = S.comfy_kl_optimal(model, n)
    close(comfy, [math.tan(i / (n - 1) * lo + (1 - i / (n - 1)) * hi) for i in range(n)] + [0.0], rel=1e-5)
    assert a1111[-1].item() == pytest.approx(model.sigma_min, rel=1e-5) and comfy[-1].item() == 0.0
    assert comfy[-2].item() == pytest.approx(model.sigma_min, rel=1e-5)
    assert not torch.allclose(a1111, comfy)


def test_comfy_kl_optimal_at_one_step_is_not_nan():
    assert S.comfy_kl_optimal(SD15, 1).tolist() == pytest.approx([SD15.sigma_max, 0.0], rel=1e-6)


# --- Beta ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS)
def test_beta_a1111_is_linear_in_sigma_comfy_picks_training_steps(model):
    n = 12
    q = stats.beta.ppf(1 - np.linspace(0, 1, n), 0.6, 0.6)
    close(S.a1111_beta(model, n), list(model.sigma_min + q * (model.sigma_max - model.sigma_min)) + [0.0])
    comfy = S.comfy_beta(model, n)
    steps = np.rint(stats.beta.ppf(1 - np.arange(n) / n, 0.6, 0.6) * 999).astype(int)
    close(comfy, [model.sigmas[i].item() for i in steps] + [0.0], rel=0)
    assert len(S.a1111_beta(model, n)) == len(comfy) and not torch.allclose(S.a1111_beta(model, n), comfy)
    assert S.a1111_beta(model, n, alpha=2.0, beta=2.0)[3] != S.a1111_beta(model, n)[3]


def test_comfy_beta_drops_repeated_timesteps():
    many = S.comfy_beta(SD15, 500)
    assert len(many) < 501 and (many[1:] < many[:-1]).all()
    assert set(many[:-1].tolist()) <= set(SD15.sigmas.tolist())


# --- Align Your Steps and GITS ---------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS)
def test_comfy_ays_at_10_steps_is_the_published_table_with_its_last_sigma_replaced_by_0(model):
    close(S.comfy_align_your_steps(model, 10), AYS_SD15[:-1] + [0.0], rel=1e-7)
    close(S.comfy_align_your_steps(model, 10, model_type="SDXL"), AYS_SDXL[:-1] + [0.0], rel=1e-7)


def test_comfy_ays_at_20_steps_keeps_the_table_and_fills_log_midpoints():
    twenty = S.comfy_align_your_steps(SD15, 20).double()
    close(twenty[0:19:2].float(), AYS_SD15[:-1], rel=1e-6)
    mids = [math.sqrt(AYS_SD15[i] * AYS_SD15[i + 1]) for i in range(9)]
    close(twenty[1:18:2].float(), mids, rel=1e-6)
    assert twenty[19].item() == pytest.approx(math.sqrt(AYS_SD15[9] * AYS_SD15[10]), rel=1e-6)


def test_a1111_ays_uses_the_table_at_11_steps_and_resamples_it_at_10():
    close(S.a1111_align_your_steps(SD15, 11), A1111_AYS_SD15 + [0.0], rel=1e-7)
    assert A1111_AYS_SD15[2] != round(AYS_SD15[2], 3)  # not ComfyUI's table rounded
    ten = S.a1111_align_your_steps(SD15, 10)
    assert len(ten) == 11 and ten[0].item() == pytest.approx(14.615) and ten[-2].item() == pytest.approx(0.029)
    assert not torch.allclose(ten, S.comfy_align_your_steps(SD15, 10), rtol=1e-2)
    assert S.a1111_align_your_steps(SD15, 11, model_type="SDXL")[3].item() == pytest.approx(2.181)


def test_gits_reads_the_published_row_and_refuses_what_the_node_refuses():
    close(S.comfy_gits(SD15, 10), GITS_120_10[:-1] + [0.0], rel=1e-7)
    assert S.comfy_gits(SD15, 10, coeff=0.8)[1] != S.comfy_gits(SD15, 10)[1]
    beyond = S.comfy_gits(SD15, 40)
    assert len(beyond) == 41 and beyond[0].item() == pytest.approx(14.61464119)
    with pytest.raises(ValueError):
        S.comfy_gits(SD15, 10, coeff=1.23)
    with pytest.raises(ValueError):
        S.comfy_gits(SD15, 1)


def test_ays_and_gits_denoise_keeps_the_tail():
    full = S.comfy_align_your_steps(SD15, 10)
    half = S.comfy_align_your_steps(SD15, 10, denoise=0.5)
    close(half, full[-6:].numpy(), rel=0)
    assert len(S.comfy_gits(SD15, 10, denoise=0.0)) == 0


# --- ComfyUI's other nodes -------------------------------------------------------------------------


def test_linear_quadratic_is_linear_then_quadratic_from_sigma_max_to_0():
    n, threshold = 10, 0.025
    sigmas = S.comfy_linear_quadratic(SD15, n).double() / SD15.sigma_max
    close(sigmas[:5].float(), [1 - i * threshold / 5 for i in range(5)], rel=1e-6)
    assert sigmas[5].item() == pytest.approx(1 - threshold, rel=1e-6)  # the two pieces meet
    second_differences = sigmas[5:].diff().diff()
    assert torch.allclose(second_differences, second_differences[0].expand_as(second_differences), atol=1e-6)
    assert S.comfy_linear_quadratic(FLOW, n)[0].item() == pytest.approx(1.0)
    assert S.comfy_linear_quadratic(SD15, 1).tolist() == pytest.approx([SD15.sigma_max, 0.0])


def test_laplace_node_is_the_formula_clamped_to_its_sigma_inputs_and_reads_no_model():
    n = 11
    x = np.linspace(0, 1, n)
    log_sigma = -0.5 * np.sign(0.5 - x) * np.log(1 - 2 * np.abs(0.5 - x) + 1e-5)
    close(S.comfy_laplace(SD15, n), np.clip(np.exp(log_sigma), 0.0291675, 14.614642), rel=2e-6)
    close(S.comfy_laplace(FLOW, n), S.comfy_laplace(SD15, n).numpy(), rel=0)
    assert S.comfy_laplace(SD15, n)[5].item() == pytest.approx(1.0)  # e^μ at the midpoint


def test_vp_node_is_the_vp_sde_sigma():
    n = 8
    t = np.linspace(1, 0.001, n)
    close(S.comfy_vp(SD15, n), list(np.sqrt(np.expm1(19.9 * t**2 / 2 + 0.1 * t))) + [0.0], rel=5e-6)


def test_polyexponential_node_uses_its_own_sigma_inputs():
    close(S.comfy_polyexponential(FLOW, 9), S.comfy_polyexponential(SD15, 9).numpy(), rel=0)
    close(S.comfy_polyexponential(SD15, 9), S.a1111_polyexponential(SD15, 9).numpy(), rel=1e-5)
    assert S.comfy_polyexponential(FLOW, 9)[0] > 10 * FLOW.sigma_max


def test_sd_turbo_takes_every_100th_timestep_from_999():
    close(S.comfy_sd_turbo(SD15, 3), [SD15.sigmas[t].item() for t in (999, 899, 799)] + [0.0], rel=1e-6)
    close(S.comfy_sd_turbo(SD15, 2, denoise=0.5), [SD15.sigmas[t].item() for t in (499, 399)] + [0.0], rel=1e-6)
    close(S.comfy_sd_turbo(FLOW, 1), [shift3(0.999), 0.0], rel=1e-6)


# --- the catalogue ---------------------------------------------------------------------------------

A1111_LABELS = {"Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
                "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"}
COMFY_SCHEDULER_NAMES = {"simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
                         "linear_quadratic", "kl_optimal"}


def test_catalogue_covers_both_tools_lists_by_their_own_names():
    for spec in SCHEDULES.values():
        assert spec.tool in ("A1111", "ComfyUI", "both")
        assert set(spec.names) == ({"A1111", "ComfyUI"} if spec.tool == "both" else {spec.tool})
    a1111 = {s.names["A1111"] for s in SCHEDULES.values() if "A1111" in s.names}
    comfy = {s.names["ComfyUI"] for s in SCHEDULES.values() if "ComfyUI" in s.names and not s.node}
    assert a1111 == A1111_LABELS and comfy == COMFY_SCHEDULER_NAMES
    assert find_schedule("A1111", "Beta").function is S.a1111_beta
    assert find_schedule("ComfyUI", "beta").function is S.comfy_beta
    assert find_schedule("ComfyUI", "Beta") is None


@pytest.mark.parametrize("function, defaults", [
    (S.karras, {"rho": 7.0}),
    (S.a1111_polyexponential, {"rho": 1.0}),
    (S.a1111_beta, {"alpha": 0.6, "beta": 0.6}),
    (S.comfy_beta, {"alpha": 0.6, "beta": 0.6}),
    (S.comfy_linear_quadratic, {"threshold_noise": 0.025, "linear_steps": None}),
    (S.comfy_gits, {"coeff": 1.20, "denoise": 1.0}),
    (S.comfy_align_your_steps, {"model_type": "SD1", "denoise": 1.0}),
    (S.comfy_laplace, {"sigma_max": 14.614642, "sigma_min": 0.0291675, "mu": 0.0, "beta": 0.5}),
    (S.comfy_polyexponential, {"sigma_max": 14.614642, "sigma_min": 0.0291675, "rho": 1.0}),
    (S.comfy_vp, {"beta_d": 19.9, "beta_min": 0.1, "eps_s": 0.001}),
])
def test_keyword_defaults_are_the_tools_defaults(function, defaults):
    params = inspect.signature(function).parameters
    assert {name: params[name].default for name in defaults} == defaults

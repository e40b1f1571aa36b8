"""Engine.sigma_schedule: the σ a run would step through, for a schedule plot, without running the model."""

from __future__ import annotations

import math

import pytest

from diffusers_tui.engine import Engine, SchedulerUnavailableError


@pytest.fixture(scope="module")
def engine():
    return Engine()


def test_schedule_types_give_their_own_sigmas_from_the_models_top_to_zero(engine):
    karras = engine.sigma_schedule("demo", "Euler", "Karras", 10)
    exponential = engine.sigma_schedule("demo", "Euler", "Exponential", 10)
    for sigmas in (karras, exponential):
        assert len(sigmas) == 11 and sigmas[-1] == 0.0
        assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
        assert sigmas[0] == pytest.approx(14.6146, rel=1e-3)  # the demo's σ_max (scaled-linear betas)
    # Exponential is log-linear between its ends; Karras (ρ = 7) is not.
    ratios = [a / b for a, b in zip(exponential[:-2], exponential[1:-1])]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-4)
    assert karras[1:-1] != pytest.approx(exponential[1:-1], rel=1e-2)


def test_timestep_schedulers_give_sigma_from_their_alphas(engine):
    """DDIM (diffusers) has timesteps and no σ list: σ = √((1 − ᾱ)/ᾱ) at each, then 0."""
    sigmas = engine.sigma_schedule("demo", "DDIM (diffusers)", "Automatic", 10)
    assert len(sigmas) == 11 and sigmas[-1] == 0.0 and all(a > b for a, b in zip(sigmas, sigmas[1:]))
    # The demo's default config: scaled-linear betas 0.00085 .. 0.012 over 1000 steps; DDIM's first timestep
    # at 10 steps, "leading" spacing with steps_offset 1, is 901.
    betas = [(math.sqrt(0.00085) + (math.sqrt(0.012) - math.sqrt(0.00085)) * i / 999) ** 2 for i in range(1000)]
    alpha = math.prod(1 - beta for beta in betas[:902])
    assert sigmas[0] == pytest.approx(math.sqrt((1 - alpha) / alpha), rel=1e-4)


def test_a_flow_model_steps_sigma_from_one_and_a_bad_name_is_refused(engine):
    sigmas = engine.sigma_schedule("demo-flow", "Euler", "Automatic", 8)
    assert sigmas[0] <= 1.0 and sigmas[-1] == 0.0 and all(a > b for a, b in zip(sigmas, sigmas[1:]))
    with pytest.raises(SchedulerUnavailableError):
        engine.sigma_schedule("demo", "PLMS (diffusers)", "Karras", 10)

"""eta, s_noise, churn and a flow model's shift: request fields, study axes, what each sampler takes, and the recipe.

Ancestral and SDE samplers read eta and s_noise (DDIM reads eta); ODE samplers take neither and say so. A
shift replaces a flow-matching model's own, and a model that is not flow-matching refuses it.
"""

import numpy as np
import pytest

from diffusers_tui.engine.axes import parse_axis
from diffusers_tui.engine.building import build_comparison
from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.files import reading
from diffusers_tui.engine.files.recipe import a1111_parameters
from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.sampling.noise_settings import sampler_note


def _pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_the_axes_read_eta_s_noise_and_shift_by_their_names_and_a1111s():
    assert parse_axis("eta=0,0.5,1").values == (0.0, 0.5, 1.0)
    assert parse_axis("Sigma noise=0.9,1").kind == "s_noise"
    assert parse_axis("flow shift=1,3").kind == "shift"
    assert parse_axis("s_noise=0.5").spec() == "s_noise=0.5"


@pytest.mark.parametrize("text, complaint", [
    ("eta=-0.1", "not an eta from 0 to 10"),
    ("eta=nan", "not an eta"),
    ("s_noise=11", "not an s_noise from 0 to 10"),
    ("shift=0", "not a shift above 0, up to 100"),
    ("shift=inf", "not a shift"),
])
def test_bad_values_on_those_axes_say_the_range(text, complaint):
    with pytest.raises(RequestError, match=complaint):
        parse_axis(text, "x")


@pytest.mark.parametrize("field, value, complaint", [
    ("eta", -1.0, "outside 0 to 10"), ("eta", float("inf"), "not a number"), ("s_noise", "1", "not a number"),
    ("shift", 0.0, "outside above 0"), ("shift", True, "not a number"),
])
def test_the_request_checks_them(field, value, complaint):
    with pytest.raises(RequestError, match=complaint) as raised:
        GenerationRequest(**{field: value})
    assert raised.value.field == field


def test_eta_changes_an_ancestral_sampler_and_at_0_it_is_the_ode_sampler(engine):
    """Euler a at eta 0 adds no noise: it is Euler, pixel for pixel. Euler runs the same at every eta, and the
    comparison says so once, naming it."""
    base = GenerationRequest(prompt="a red circle on a blue background", seed=3, steps=6, preview_method="none")
    study = build_comparison(base, ["Euler a", "Euler"], "6", axes={"x": "eta=0,1"})
    result = engine.compare(study)
    images = {(lane.lane.scheduler, dict(lane.lane.settings)["eta"]): _pixels(lane.result.image)
              for lane in result.lanes}
    assert np.array_equal(images[("Euler a", 0.0)], images[("Euler", 0.0)])
    assert np.array_equal(images[("Euler", 0.0)], images[("Euler", 1.0)])
    assert np.abs(images[("Euler a", 0.0)] - images[("Euler a", 1.0)]).max() > 10
    assert [note for note in result.notes if note.startswith("eta")] == [
        "eta not used by Euler: it adds no noise after the start (eta is for ancestral and SDE samplers, and DDIM)"]
    # s_noise scales the noise Euler a adds back (eta 1, its default): at 0 it adds none, and steps to σ_down.
    quiet = engine.run(GenerationRequest(prompt=base.prompt, seed=3, steps=6, scheduler="Euler a", s_noise=0.0))
    assert np.abs(_pixels(quiet.image) - images[("Euler a", 1.0)]).max() > 10


def test_a_shift_moves_a_flow_models_schedule_and_other_models_refuse_it(engine):
    base = GenerationRequest(prompt="a red circle on a blue background", model="demo-flow", seed=3, steps=6,
                             preview_method="none")
    result = engine.compare(build_comparison(base, ["Euler"], "6", axes={"x": "shift=1,3"}))
    unshifted, shifted = (lane.sigmas for lane in result.lanes)
    # σ' = sσ / (1 + (s - 1)σ): the same fractions of the run, moved towards noise.
    for sigma, moved in zip(unshifted[1:-1], shifted[1:-1]):
        assert moved == pytest.approx(3 * sigma / (1 + 2 * sigma), rel=1e-4)
    one, three = result.lanes  # the runs themselves stepped through them
    assert three.result.recipe["scheduler_config"]["shift"] == 3.0
    assert np.abs(_pixels(one.result.image) - _pixels(three.result.image)).max() > 10
    with pytest.raises(RequestError, match="not flow-matching") as raised:
        engine.run(GenerationRequest(prompt="a red circle", seed=3, steps=2, shift=3.0))
    assert raised.value.field == "shift"


def test_the_infotext_writes_eta_and_sigma_noise_where_the_sampler_took_them_and_reads_them_back():
    recipe = {"scheduler_name": "Euler a", "width": 64, "height": 64, "model": "demo"}
    taken = GenerationRequest(prompt="a cat", scheduler="Euler a", eta=0.6, s_noise=0.9)
    line = a1111_parameters(taken, recipe)
    assert "Eta: 0.6" in line and "Sigma noise: 0.9" in line
    fields = reading.parse_a1111(line).fields
    assert (fields["eta"], fields["s_noise"]) == (0.6, 0.9)
    ignored = GenerationRequest(prompt="a cat", scheduler="Euler", eta=0.6, s_noise=0.9)
    assert "Eta" not in a1111_parameters(ignored, {**recipe, "scheduler_name": "Euler"})
    assert sampler_note(ignored) == (
        "eta 0.6 and s_noise 0.9 not used: Euler adds no noise after the start (eta is for ancestral and SDE "
        "samplers, and DDIM); it adds no noise after the start (s_noise is for ancestral and SDE samplers, and churn)")
    ddim = GenerationRequest(prompt="a cat", scheduler="DDIM", eta=0.3)
    assert "Eta DDIM: 0.3" in a1111_parameters(ddim, {**recipe, "scheduler_name": "DDIM"})
    assert sampler_note(ddim) is None
    assert reading.parse_a1111("a cat\nSteps: 4, Eta: huge").notes == ("Eta 'huge' is not a number: not used",)


def test_churn_raises_euler_heun_and_dpm2s_sigma_within_its_bounds_and_others_say_they_have_none(engine):
    """s_churn > 0 changes Euler; a churn window (s_tmin..s_tmax) that holds none of the run's σ is no churn at
    all; s_noise then scales the churn's noise; DPM++ 2M has no churn and the comparison names it."""
    base = GenerationRequest(prompt="a red circle on a blue background", seed=5, steps=6, preview_method="none")
    study = build_comparison(base, ["Euler", "DPM++ 2M"], "6", axes={"x": "s_churn=0,40"})
    result = engine.compare(study)
    images = {(lane.lane.scheduler, dict(lane.lane.settings)["s_churn"]): _pixels(lane.result.image)
              for lane in result.lanes}
    assert np.abs(images[("Euler", 0.0)] - images[("Euler", 40.0)]).max() > 10
    assert np.array_equal(images[("DPM++ 2M", 0.0)], images[("DPM++ 2M", 40.0)])
    assert "s_churn not used by DPM++ 2M: it has no churn (Euler, Heun and DPM2 have)" in result.notes

    def euler(**churn):
        return _pixels(engine.run(GenerationRequest(prompt=base.prompt, seed=5, steps=6, scheduler="Euler",
                                                    **churn)).image)

    # Run alone, each against its own solo run (a batched lane may differ from it by a unit or two).
    assert np.array_equal(euler(s_churn=40.0, s_tmin=100.0), euler())  # the run's σ never reach 100
    assert np.abs(euler(s_churn=40.0, s_noise=0.5) - euler(s_churn=40.0)).max() > 10
    churned = GenerationRequest(prompt="a cat", scheduler="Euler", s_churn=40.0, s_tmax=5.0, s_noise=0.5)
    line = a1111_parameters(churned, {"scheduler_name": "Euler", "width": 64, "height": 64})
    assert "Sigma churn: 40" in line and "Sigma tmax: 5" in line and "Sigma noise: 0.5" in line
    fields = reading.parse_a1111(line).fields
    assert (fields["s_churn"], fields["s_tmax"], fields["s_noise"]) == (40.0, 5.0, 0.5)

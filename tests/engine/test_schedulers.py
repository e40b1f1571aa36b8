"""The registry: A1111 names, from_config on the model's config, real call counts."""

import pytest

from diffusers_tui.engine.sampling import registry as schedulers
from diffusers_tui.engine.errors import SchedulerUnavailableError
from diffusers_tui.engine.request import GenerationRequest


def test_registry_has_the_names_people_know():
    names = set(schedulers.names())
    assert len(names) >= 18
    for expected in ("Euler", "Euler a", "Heun", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE",
                     "DPM++ 2M SDE Karras", "DPM++ SDE", "DPM2", "DPM2 a", "LMS", "LMS Karras",
                     "DDIM", "DDPM", "PLMS", "UniPC", "DEIS"):
        assert expected in names


def test_lookup_is_case_insensitive_and_unknown_names_list_the_choices():
    assert schedulers.get("dpm++ 2m karras").options == {"use_karras_sigmas": True}
    with pytest.raises(SchedulerUnavailableError, match="choose one of: Euler"):
        schedulers.get("Eulerr")


@pytest.mark.parametrize("name", schedulers.names())
def test_every_entry_runs_two_steps_or_says_why(engine, tiny_sd, name):
    status = {s.entry.name: s for s in engine.scheduler_statuses(str(tiny_sd))}[name]
    if not status.available:
        assert status.reason
        return
    snapshots = []
    result = engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), scheduler=name,
                                          steps=2, seed=1), on_step=snapshots.append)
    assert result.image is not None and not result.cancelled
    pipe_calls = engine.loaded_model(str(tiny_sd)).pipeline.num_timesteps
    # The total counts real model calls: 2N-1 for second-order solvers, N+1 for PLMS.
    assert result.total_calls == pipe_calls == len(snapshots) == snapshots[-1].total
    entry = schedulers.get(name)
    if entry.order == 2:
        assert result.total_calls == 3
    assert result.recipe["scheduler_class"] == entry.class_name
    for key, value in entry.options.items():
        assert result.recipe["scheduler_config"][key] == value


def test_built_from_the_models_original_config(engine, tiny_sd):
    loaded = engine.loaded_model(str(tiny_sd))
    built = schedulers.build(schedulers.get("Euler"), loaded.original_scheduler_config)
    assert built.config.beta_schedule == "scaled_linear"
    assert built.config.beta_end == pytest.approx(0.012)
    assert loaded.scheduler.config.beta_end == pytest.approx(0.012)  # the original is untouched


def test_a_missing_package_marks_an_entry_unavailable(monkeypatch):
    import diffusers

    def needs_scipy(*args, **kwargs):
        raise ImportError("LMSDiscreteScheduler requires the scipy library")

    monkeypatch.setattr(diffusers.LMSDiscreteScheduler, "from_config", needs_scipy)
    status = {s.entry.name: s for s in schedulers.statuses(None, None)}
    assert not status["LMS"].available and "scipy" in status["LMS"].reason
    assert status["Euler"].available


def test_entries_the_model_does_not_declare_compatible_are_filtered():
    status = {s.entry.name: s for s in schedulers.statuses({}, {"DDIMScheduler", "DDPMScheduler"})}
    assert status["DDIM"].available
    assert not status["Euler"].available and "not compatible" in status["Euler"].reason


def test_entry_for_scheduler_prefers_the_most_specific_name():
    built = schedulers.build(schedulers.get("DPM++ 2M SDE Karras"), {})
    assert schedulers.entry_for_scheduler(built).name == "DPM++ 2M SDE Karras"
    assert schedulers.entry_for_scheduler(schedulers.build(schedulers.get("DPM++ 2M"), {})).name == "DPM++ 2M"

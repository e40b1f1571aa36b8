"""One way to build a request: the layers' order, the limits every message quotes, plain values out."""

import dataclasses

import pytest

from diffusers_tui.engine import (LIMITS, Engine, ModelSummary, Recipe, RequestError, build_comparison, build_request,
                                  describe_range)

SETTINGS = {"model": "demo", "scheduler": "Euler", "steps": 20, "guidance": 5.0, "size": "64x64",
            "preview": "x0", "preview_every": 1, "preview_method": "vae"}


def test_explicit_beats_a_pinned_setting_beats_the_recipe_beats_the_settings():
    recipe = Recipe({"steps": 7, "scheduler": "DDIM", "prompt": "from the recipe", "seed": 3}, "diffusers-tui")
    request = build_request(SETTINGS, recipe=recipe, given={"seed": 9}, pinned={"scheduler"})
    assert (request.steps, request.scheduler, request.prompt, request.seed) == (7, "Euler", "from the recipe", 9)
    assert (request.width, request.height, request.preview_method) == (64, 64, "vae")  # settings fill the rest


def test_nothing_given_means_the_default_prompt_and_a_fresh_seed():
    requests = [build_request({}) for _ in range(5)]
    assert {request.prompt for request in requests} == {requests[0].prompt} and requests[0].prompt.strip()
    assert len({request.seed for request in requests}) > 1


def test_a_bad_layer_names_its_field():
    with pytest.raises(RequestError) as raised:
        build_request({**SETTINGS, "steps": 0})
    assert raised.value.field == "steps" and describe_range("steps") in str(raised.value)


def test_a_comparison_is_every_scheduler_at_every_step_count_on_the_base():
    base = build_request(SETTINGS, given={"seed": 1})
    request = build_comparison(base, ["Euler", "DDIM"], "4,8", reference="Heun:30")
    assert [lane.label for lane in request.lanes] == ["Euler · 4", "Euler · 8", "DDIM · 4", "DDIM · 8"]
    assert request.reference.steps == 30 and request.base is base


def test_ranges_in_messages_come_from_the_limits():
    low, high = LIMITS["steps"]
    with pytest.raises(RequestError, match=f"outside {low:g} to {high:g}"):
        build_request({}, given={"steps": int(high) + 1})


def test_a_loaded_model_reaches_the_ui_as_plain_values_only(engine):
    summary = engine.load("demo")
    assert isinstance(summary, ModelSummary) and summary.mode == "text-to-image"

    def plain(value) -> bool:
        if dataclasses.is_dataclass(value):
            return all(plain(getattr(value, field.name)) for field in dataclasses.fields(value))
        if isinstance(value, (tuple, list, set, frozenset)):
            return all(plain(item) for item in value)
        if isinstance(value, dict):
            return all(plain(k) and plain(v) for k, v in value.items())
        return value is None or isinstance(value, (str, int, float, bool))

    assert plain(summary), summary
    assert summary.default_scheduler is None or summary.default_scheduler in {s.entry.name for s in summary.statuses}


def test_the_result_owns_every_preview_the_run_reported():
    engine = Engine()
    seen = []
    result = engine.run(build_request(SETTINGS, given={"steps": 4, "seed": 1, "preview_method": "auto"}),
                        lambda snapshot: seen.append(snapshot))
    assert result.frames == tuple(snapshot for snapshot in seen if snapshot.latents is not None)
    assert len(result.frames) == result.model_calls == 4

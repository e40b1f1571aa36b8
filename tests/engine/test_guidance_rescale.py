"""CFG rescale (diffusers' guidance_rescale) on the pipelines that have it: a request field, a flag, a study axis,
the same in a batched comparison as alone, recorded and read back; a model without it says so."""

from __future__ import annotations

import numpy as np
import pytest

from diffusers_tui.engine import Engine, GenerationRequest, RequestError, build_comparison, guidance_note
from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.engine.files.reading import parse_a1111


def _pixels(result):
    return np.asarray(result.image.convert("RGB"), dtype=np.int16)


def test_rescale_reaches_the_pipeline_and_a_batched_lane_and_reads_back(tiny_sd, engine):
    base = dict(prompt="a red square", model=str(tiny_sd), seed=3, steps=4, guidance=7.0, preview_method="none",
                scheduler="Euler")
    plain = engine.run(GenerationRequest(**base))
    rescaled = engine.run(GenerationRequest(**base, guidance_rescale=0.7))
    assert np.abs(_pixels(rescaled) - _pixels(plain)).max() > 2
    assert rescaled.recipe["call_arguments"]["guidance_rescale"] == 0.7
    line = png_recipe.a1111_parameters(rescaled.request, rescaled.recipe)
    assert "diffusers-tui guidance rescale: 0.7" in line and parse_a1111(line).fields["guidance_rescale"] == 0.7
    study = build_comparison(GenerationRequest(**base), ["Euler"], "4", axes={"x": "cfg rescale=0,0.7"})
    race = engine.compare(study)
    assert race.batched and study.axes[0].title == "guidance rescale"
    for lane, alone in zip(race.lanes, (plain, rescaled)):
        assert np.abs(_pixels(lane.result) - _pixels(alone)).max() <= 1
    with pytest.raises(RequestError, match="guidance_rescale"):
        GenerationRequest(**base, guidance_rescale=1.5)


def test_a_model_without_rescale_says_it_is_not_used(engine):
    summary = engine.load("demo-flow")  # an SD3 pipeline: no guidance_rescale
    request = GenerationRequest(prompt="a red circle", model="demo-flow", guidance_rescale=0.5)
    assert not summary.guidance_rescale and "guidance rescale 0.5 is not used: this pipeline has none" in (
        guidance_note(request, summary) or "")
    assert engine.load("demo").guidance_rescale

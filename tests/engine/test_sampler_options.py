"""Sampler options beyond eta and churn (ComfyUI's sampler nodes' r, orders, stages...): request field, flag, axis,
recipe, and what a sampler that does not read one says."""

from __future__ import annotations

import numpy as np
import pytest

from diffusers_tui.engine import Engine, GenerationRequest, RequestError, build_comparison, sampler_note
from diffusers_tui.engine.axes import parse_axis
from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.engine.sampling import sampler_options
from diffusers_tui.engine.sampling.sigma import catalogue


def test_every_option_names_sampler_functions_that_exist_and_read_it():
    import importlib
    import inspect
    import re

    def source_with_helpers(module: str) -> str:
        """A sampler module's source, and that of the sampler modules it takes helpers from."""
        source = inspect.getsource(importlib.import_module(f"diffusers_tui.engine.sampling.sigma.{module}"))
        helpers = re.findall(r"from diffusers_tui\.engine\.sampling\.sigma\.(samplers_\w+) import", source)
        return source + "".join(inspect.getsource(importlib.import_module(
            f"diffusers_tui.engine.sampling.sigma.{helper}")) for helper in helpers)

    for name, option in sampler_options.OPTIONS.items():
        for ref in option.functions:
            module, function = ref.split(":")
            source = source_with_helpers(module)
            assert f"def {function}(" in source, ref
            assert f'"{name}"' in source, (name, ref)  # read by that name, there or in a helper it calls
        assert any(sampler.function_ref in option.functions for sampler in catalogue.all_samplers()), name


def test_an_option_reaches_the_samplers_that_read_it_and_is_refused_out_of_range(engine):
    base = dict(prompt="a red circle on a blue background", model="demo", steps=6, seed=2, preview_method="none",
                scheduler="dpmpp_sde", schedule="karras")
    default = engine.run(GenerationRequest(**base))
    same = engine.run(GenerationRequest(**base, sampler_options=(("r", 0.5),)))  # its default, given
    other = engine.run(GenerationRequest(**base, sampler_options=(("r", 0.3),)))
    pixels = [np.asarray(result.image.convert("RGB"), dtype=np.int16) for result in (default, same, other)]
    assert np.array_equal(pixels[0], pixels[1]) and np.abs(pixels[2] - pixels[0]).max() > 2
    assert "diffusers-tui sampler options: r=0.3," in png_recipe.a1111_parameters(other.request, other.recipe)
    euler = GenerationRequest(**{**base, "scheduler": "Euler"}, sampler_options=(("r", 0.3),))
    assert sampler_note(euler) == ("r 0.3 not used: Euler does not read r (the intermediate point of a step, "
                                   "as a fraction of it in log-SNR)")
    with pytest.raises(RequestError, match=r"max_stage 4 is outside what it can be \(ER-SDE's solver stages: a whole number from 1 to 3"):
        GenerationRequest(**base, sampler_options=(("max_stage", 4),))
    with pytest.raises(RequestError, match="'tau' is not a sampler option"):
        GenerationRequest(**base, sampler_options=(("tau", 1.0),))


def test_an_option_axis_runs_each_value_as_its_own_run_and_reads_back(engine, tmp_path):
    assert parse_axis("option:r=0.3,0.5").spec() == "option:r=0.3,0.5"
    with pytest.raises(RequestError, match="name the sampler option"):
        parse_axis("option=0.3")
    with pytest.raises(RequestError, match="a whole number from 1 to 3"):
        parse_axis("option:max_stage=2,5")
    base = GenerationRequest(prompt="a red circle on a blue background", model="demo", steps=6, seed=2,
                             preview_method="none")
    study = build_comparison(base, ["seeds_2 karras"], "6", axes={"x": "option:r=0.3,0.7"})
    result = engine.compare(study)
    for lane, r in zip(result.lanes, (0.3, 0.7)):
        alone = engine.run(GenerationRequest(**{**base.to_dict(), "scheduler": "seeds_2", "schedule": "karras",
                                                 "sampler_options": (("r", r),)}))
        assert np.abs(np.asarray(lane.result.image, dtype=np.int16) - np.asarray(alone.image, dtype=np.int16)
                      ).max() <= 1
    png = engine.save(result.lanes[0].result, tmp_path)
    assert engine.read_recipe(png).request().sampler_options == (("r", 0.3),)
    line = png_recipe.a1111_parameters(result.lanes[0].result.request, result.lanes[0].result.recipe)
    from diffusers_tui.engine.files.reading import parse_a1111

    assert parse_a1111(line).fields["sampler_options"] == [("r", 0.3)]

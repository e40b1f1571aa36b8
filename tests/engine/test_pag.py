"""Perturbed-attention guidance through the pipelines' PAG variants (from_pipe), recorded and re-run."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from diffusers_tui.engine import Engine, GenerationRequest, RequestError
from diffusers_tui.engine.files.reading import parse_a1111
from diffusers_tui.engine.files.recipe import read_parameters

BASE = dict(prompt="a red circle on a blue background", scheduler="Euler", steps=8, seed=3)


def _pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=int)


def test_pag_changes_the_picture_through_the_pag_pipeline_sharing_the_models_modules(engine):
    plain = engine.run(GenerationRequest(**BASE))
    guided = engine.run(GenerationRequest(**BASE, pag_scale=3.0))
    assert np.abs(_pixels(plain) - _pixels(guided)).mean() > 0.5
    assert np.array_equal(_pixels(guided), _pixels(engine.run(GenerationRequest(**BASE, pag_scale=3.0))))
    loaded = engine.loaded_model("demo")
    pag_pipe = loaded.related_pipelines["text2img+pag"]
    assert type(pag_pipe).__name__ == "StableDiffusionPAGPipeline" and pag_pipe.unet is loaded.pipeline.unet
    assert guided.recipe["call_arguments"]["pag_scale"] == 3.0
    assert engine.load("demo").pag  # the summary says the model has it


def test_a_cancelled_pag_run_gives_the_shared_unet_its_own_attention_back():
    engine = Engine()
    before = engine.run(GenerationRequest(**BASE))
    cancel = threading.Event()
    stopped = engine.run(GenerationRequest(**BASE, pag_scale=3.0), on_step=lambda s: s.step == 3 and cancel.set(),
                         cancel=cancel)
    assert stopped.cancelled
    assert np.array_equal(_pixels(before), _pixels(engine.run(GenerationRequest(**BASE))))


def test_the_pag_scale_is_recorded_read_back_and_an_axis(engine, tmp_path):
    result = engine.run(GenerationRequest(**BASE, pag_scale=2.0))
    parameters = read_parameters(engine.save(result, tmp_path))
    assert "diffusers-tui PAG scale: 2" in parameters
    again = engine.run(parse_a1111(parameters).request())
    assert np.array_equal(_pixels(again), _pixels(result))
    from diffusers_tui.engine import build_comparison

    study = build_comparison(GenerationRequest(**BASE), ["Euler"], "8", axes={"x": "pag=0,2"})
    compared = engine.compare(study)
    assert [lane.result.request.pag_scale for lane in compared.lanes] == [0.0, 2.0]
    assert np.array_equal(_pixels(compared.lanes[1].result), _pixels(result))


def test_a_model_without_pag_says_so(engine, tiny_ddpm):
    from diffusers_tui.engine import guidance_note

    with pytest.raises(RequestError, match="pag_scale: perturbed-attention guidance is a pipeline's"):
        engine.run(GenerationRequest(model=str(tiny_ddpm), steps=2, pag_scale=2.0))
    summary = engine.load("demo")
    flux_like = type(summary)(**{**summary.__dict__, "pag": False})
    note = guidance_note(GenerationRequest(**BASE, pag_scale=2.0), flux_like)
    assert "PAG scale 2 cannot run" in note


@pytest.mark.slow
def test_pag_snippets_run_as_written_and_save_the_same_pixels(engine, tmp_path):
    from tests.engine.test_reproduce_snippets import _assert_same_pixels, _run_snippets

    saved = {"pag": engine.save(engine.run(GenerationRequest(**BASE, pag_scale=2.5)), tmp_path / "out")}
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))

"""Transformer pipelines (SD3, Flux) run like any model: generate, previews, cancel, save, snippet, compare.

Tiny random-weight pipelines built from configs (tests/tiny_transformers.py). Flux keeps its
latents packed into 2x2 patch tokens and shifts its schedule by the image size; SD3 does neither.
"""

import threading

import numpy as np
import pytest

from diffusers_tui.engine import ComparisonRequest, GenerationRequest, Lane
from tests.tiny_transformers import build_tiny_flux, build_tiny_sd3

BUILDERS = {"sd3": build_tiny_sd3, "flux": build_tiny_flux}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def transformer_model(request, tmp_path_factory):
    name = request.param
    return name, str(BUILDERS[name](tmp_path_factory.mktemp("models") / f"tiny-{name}"))


def _request(model, **fields):
    return GenerationRequest(**{"prompt": "a red circle", "model": model, "steps": 4, "seed": 3, "width": 32,
                                "height": 24, **fields})


def test_a_transformer_pipeline_loads_with_its_own_scheduler_first_and_the_flow_samplers(engine, transformer_model):
    name, model = transformer_model
    summary = engine.load(model)
    assert summary.mode == "text-to-image"
    pipeline = {"sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline"}[name]
    assert type(engine.loaded_model(model).pipeline).__name__ == pipeline
    # Its latents are previewed by the family's published latent->RGB map (ComfyUI's), found by its VAE.
    assert engine.loaded_model(model).family == name and "fitted" not in " ".join(summary.notes)
    first, *others = summary.statuses
    assert (first.entry.name, first.entry.class_name) == ("model default", "FlowMatchEulerDiscreteScheduler")
    available = {status.entry.name for status in others if status.available}
    assert {"Euler", "Euler a", "UniPC"} <= available
    if name == "flux":  # its schedule is shifted by the image size: FlowMatchHeun takes no shift
        heun = next(status for status in others if status.entry.name == "Heun")
        assert not heun.available and "shift its schedule by the image size" in heun.reason


@pytest.mark.parametrize("scheduler, schedule", [(None, "Automatic"), ("Euler", "Karras"), ("UniPC", "Automatic"),
                                                 ("Euler a", "Automatic")])
def test_every_step_is_reported_and_previewed_at_the_images_aspect(engine, transformer_model, scheduler, schedule):
    _name, model = transformer_model
    snapshots = []
    result = engine.run(_request(model, scheduler=scheduler, schedule=schedule), on_step=snapshots.append)
    assert result.image.size == (32, 24) and result.stopped is None and not result.cancelled
    assert [s.step for s in snapshots] == list(range(1, result.total_calls + 1))
    sigmas = [s.sigma for s in snapshots]
    assert sigmas[0] == pytest.approx(1.0, abs=1e-3) and all(a > b for a, b in zip(sigmas, sigmas[1:]))  # flow: σ from 1 down
    for snapshot in snapshots:
        for method in ("vae", "latent"):
            picture = np.asarray(engine.preview(snapshot, method), dtype=float)
            assert picture.shape[1] * 24 == picture.shape[0] * 32  # the image's aspect ratio
            assert picture.std() > 0  # never a constant frame


def test_cancel_stops_within_one_step(engine, transformer_model):
    _name, model = transformer_model
    cancel = threading.Event()
    seen = []

    def on_step(snapshot):
        seen.append(snapshot.step)
        if snapshot.step == 2:
            cancel.set()

    result = engine.run(_request(model, steps=8), on_step=on_step, cancel=cancel)
    assert result.cancelled and result.image is None and seen == [1, 2]


def test_saved_recipes_rerun_to_the_same_pixels(engine, transformer_model, tmp_path):
    _name, model = transformer_model
    first = engine.run(_request(model, scheduler="UniPC", negative_prompt="blue"))
    png = engine.save(first, tmp_path)
    again = engine.run(engine.read_recipe(png).request(model=model))
    assert (again.request.scheduler, again.request.negative_prompt) == ("UniPC", "blue")
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))


def test_comparisons_run_the_lanes_one_after_another_and_say_so(engine, transformer_model):
    _name, model = transformer_model
    base = _request(model, preview_method="none")
    result = engine.compare(ComparisonRequest(base, (Lane("model default", 3), Lane("Euler", 3))))
    assert [lane.result.image.size for lane in result.lanes] == [(32, 24), (32, 24)]
    assert any("one after another" in note for note in result.notes)
    solo = engine.run(GenerationRequest(**{**base.to_dict(), "steps": 3, "scheduler": "Euler"}))
    assert np.array_equal(np.asarray(solo.image), np.asarray(result.lanes[1].result.image))

"""One runner for both modes: previews every step, cancel, reproducibility, the UNet loop."""

import threading

import numpy as np
import pytest

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.request import GenerationRequest


def _pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_pipeline_run_streams_a_preview_every_call(engine, tiny_sd):
    snapshots = []
    request = GenerationRequest(prompt="a blue circle", model=str(tiny_sd), scheduler="Euler", steps=4, seed=5)
    result = engine.run(request, on_step=snapshots.append)
    assert [s.step for s in snapshots] == [1, 2, 3, 4]
    assert all(s.total == 4 and s.latents is not None and s.preview is None for s in snapshots)
    assert result.frames == tuple(snapshots)
    assert engine.preview(snapshots[0], "latent").size == (8, 8)  # latent resolution: 16 px / VAE factor 2
    assert engine.preview(snapshots[0], "vae").size == (16, 16)
    assert engine.full_image(snapshots[0]).size == (16, 16)
    assert all(s.sigma is not None and s.sigma > 0 for s in snapshots)
    assert snapshots[0].sigma > snapshots[-1].sigma
    assert result.image.size == (16, 16) and result.model_calls == 4


def test_preview_every_n_and_always_the_last(engine, tiny_sd):
    snapshots = []
    engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), scheduler="Euler", steps=5, preview_every=2),
               on_step=snapshots.append)
    assert [s.step for s in snapshots if s.latents is not None] == [2, 4, 5]


def test_same_seed_same_pixels_and_previews_never_change_the_result(engine, tiny_sd):
    base = dict(prompt="a red square", model=str(tiny_sd), scheduler="DPM++ 2M", steps=3, seed=11)
    first = engine.run(GenerationRequest(**base, preview_method="none")).image
    again = engine.run(GenerationRequest(**base, preview="x0", preview_method="latent")).image
    noisy = engine.run(GenerationRequest(**base, preview="noisy", preview_method="vae")).image
    other_seed = engine.run(GenerationRequest(**{**base, "seed": 12})).image
    assert np.array_equal(_pixels(first), _pixels(again))
    assert np.array_equal(_pixels(first), _pixels(noisy))
    assert not np.array_equal(_pixels(first), _pixels(other_seed))


@pytest.mark.parametrize("name", ["Euler a", "DPM++ 2M SDE", "DPM SDE", "DDPM", "DPM2 a"])
def test_stochastic_schedulers_are_reproducible_too(engine, tiny_sd, name):
    request = GenerationRequest(prompt="a red square", model=str(tiny_sd), scheduler=name, steps=3, seed=4)
    assert np.array_equal(_pixels(engine.run(request).image), _pixels(engine.run(request).image))


def test_cancel_stops_within_one_step_and_keeps_the_last_preview(engine, tiny_sd):
    cancel = threading.Event()
    snapshots = []

    def on_step(snapshot):
        snapshots.append(snapshot)
        if snapshot.step == 2:
            cancel.set()

    result = engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), scheduler="Euler", steps=10), on_step, cancel)
    assert result.cancelled and result.image is None
    assert len(snapshots) == 2 and result.model_calls == 2
    assert result.last_preview is engine.preview(snapshots[-1])  # decoded once, cached
    # The pipeline stays usable after a cancelled run.
    assert engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), steps=2)).image is not None


def test_cancel_before_start_returns_at_once(engine, tiny_ddpm):
    cancel = threading.Event()
    cancel.set()
    result = engine.run(GenerationRequest(model=str(tiny_ddpm), steps=50), cancel=cancel)
    assert result.cancelled and result.model_calls == 0 and result.image is None


@pytest.mark.parametrize("fixture", ["tiny_ddpm", "tiny_bare_unet"])
def test_unet_loop_runs_a_ddpm_folder_and_a_bare_unet(engine, request, fixture):
    folder = request.getfixturevalue(fixture)
    snapshots = []
    result = engine.run(GenerationRequest(model=str(folder), steps=6, seed=2, preview_every=3),
                        on_step=snapshots.append)
    loaded = engine.loaded_model(str(folder))
    assert loaded.mode == "unet"
    assert result.image.size == (16, 16) and result.total_calls == 6
    assert [s.step for s in snapshots if s.latents is not None] == [3, 6]
    assert engine.preview(snapshots[2]).size == (16, 16)  # pixel space: the sample itself
    repeat = engine.run(GenerationRequest(model=str(folder), steps=6, seed=2, preview_method="none"))
    assert np.array_equal(_pixels(result.image), _pixels(repeat.image))


def test_unet_loop_takes_registry_schedulers(engine, tiny_ddpm):
    for name in ("DDIM", "Euler a", "Heun", "UniPC"):
        result = engine.run(GenerationRequest(model=str(tiny_ddpm), scheduler=name, steps=3))
        assert result.image is not None
        assert result.total_calls == (5 if name == "Heun" else 3)


def test_mode_and_size_mismatches_name_the_field(engine, tiny_sd, tiny_ddpm):
    with pytest.raises(RequestError, match="mode: unet does not fit"):
        engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), mode="unet", steps=2))
    with pytest.raises(RequestError, match="mode: text-to-image does not fit"):
        engine.run(GenerationRequest(prompt="a red square", model=str(tiny_ddpm), mode="text-to-image", steps=2))
    with pytest.raises(RequestError, match="width: 72 is not a multiple of 16"):
        engine.run(GenerationRequest(prompt="a red square", model="demo", width=72, steps=2))


def test_demo_model_draws_what_the_prompt_says(engine):
    """A small version of the demo quality check: a broken demo model fails CI."""
    from diffusers_tui.engine.demo.shapes import ShapeSpec, read_shape

    cases = [ShapeSpec("red", "circle", "blue"), ShapeSpec("yellow", "square", "purple"),
             ShapeSpec("white", "triangle", "green")]
    for seed, spec in enumerate(cases):
        result = engine.run(GenerationRequest(prompt=spec.caption, model="demo", scheduler="DPM++ 2M",
                                              steps=12, seed=seed, preview_method="none"))
        reading = read_shape(result.image)
        assert (reading.colour, reading.shape, reading.background) == (spec.colour, spec.shape, spec.background)


def test_sdxl_pipelines_run_through_the_same_callback(engine, tiny_sdxl):
    snapshots = []
    result = engine.run(GenerationRequest(prompt="a red circle", model=str(tiny_sdxl), scheduler="DPM++ 2M Karras",
                                          steps=3, seed=1), on_step=snapshots.append)
    loaded = engine.loaded_model(str(tiny_sdxl))
    assert type(loaded.pipeline).__name__ == "StableDiffusionXLPipeline" and loaded.family == "sdxl"
    assert result.image.size == (16, 16) and [s.step for s in snapshots] == [1, 2, 3]
    assert all(s.latents is not None for s in snapshots)
    assert engine.preview(snapshots[0], "latent").size == (8, 8)  # SDXL's published map


def test_engine_sets_the_torch_thread_count(monkeypatch, tiny_ddpm):
    import torch

    from diffusers_tui.engine import Engine

    before = torch.get_num_threads()
    try:
        Engine(threads=2).load(str(tiny_ddpm))
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("DIFFUSERS_TUI_THREADS", "1")
        Engine().load(str(tiny_ddpm))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_demo_ddpm_draws_plausible_shapes(engine):
    """A small version of demo-ddpm's quality check (100 DDPM steps, 10 seeds; 8 pass today).

    An untrained or broken model passes none; the full check (1000 steps, 50 seeds) is
    benchmarks/demo_quality.py.
    """
    from diffusers_tui.engine.demo.shapes import read_shape

    readings = [read_shape(engine.run(GenerationRequest(model="demo-ddpm", steps=100, seed=seed,
                                                         preview_method="none")).image)
                for seed in range(10)]
    assert sum(reading.plausible for reading in readings) >= 6, readings

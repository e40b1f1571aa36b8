"""The engine's samplers inside real runs: the stand-in's timesteps and start, noise conventions, ENSD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusers_tui.engine import GenerationRequest
from diffusers_tui.engine.sampling import registry
from diffusers_tui.engine.sampling.sigma.philox import PhiloxGenerator

DEMO_CONFIG = json.loads((Path(__file__).parents[2] / "diffusers_tui/engine/demo/demo-sd/scheduler/"
                          "scheduler_config.json").read_text().replace("-Infinity", "null"))


def _built(name: str, schedule: str = "Automatic", **run):
    scheduler = registry.build(registry.get(name), DEMO_CONFIG, schedule, run)
    scheduler.set_timesteps(10)
    return scheduler


@pytest.mark.parametrize("name, calls", [("Euler", 10), ("Heun", 19), ("DPM2 a", 19), ("DPM++ SDE", 19),
                                         ("Restart", 19), ("seeds_3", 28), ("DPM fast", 10)])
def test_the_pipeline_is_handed_one_timestep_per_model_call(name, calls):
    scheduler = _built(name)
    assert len(scheduler.timesteps) == calls == scheduler.expected_calls
    # Each timestep is the model's for that call's σ (A1111: log-σ interpolated, so fractional).
    assert float(scheduler.timesteps[0]) == pytest.approx(999.0, abs=1e-3)


def test_the_starting_noise_is_scaled_as_each_tool_scales_it():
    a1111 = _built("Euler", convention="A1111 CPU")
    comfy = _built("euler", "normal", convention="ComfyUI")
    assert a1111.init_noise_sigma == pytest.approx(14.6146, abs=1e-3)  # σ_max
    assert comfy.init_noise_sigma == pytest.approx((1 + 14.6146 ** 2) ** 0.5, abs=1e-3)  # full denoise: √(1+σ²)
    below = _built("euler", "ddim_uniform", convention="ComfyUI")  # starts under σ_max: ComfyUI scales by σ₀
    assert below.init_noise_sigma == pytest.approx(below.sigma_list[0]) and below.sigma_list[0] < 14.0


def test_a1111_gpu_and_nv_noise_is_cudas_philox_drawn_here(engine):
    base = dict(prompt="a red circle on a blue background", scheduler="Euler a", steps=8, seed=7, preview_method="none")
    images = {noise: np.asarray(engine.run(GenerationRequest(**base, noise=noise)).image, dtype=int)
              for noise in ("A1111 CPU", "A1111 NV", "A1111 GPU")}
    assert np.abs(images["A1111 CPU"] - images["A1111 NV"]).max() > 10  # another generator: another picture
    assert np.array_equal(images["A1111 NV"], images["A1111 GPU"])  # no CUDA here: GPU's numbers are emulated
    scheduler = _built("Euler a", convention="A1111 NV", seed=7)
    start = scheduler.starting_noise((1, 4, 8, 8), "cpu", torch.float32)
    assert torch.allclose(start[0], torch.from_numpy(PhiloxGenerator(7).randn((4, 8, 8))))


def test_ensd_moves_the_ancestral_noise_and_nothing_else(engine):
    base = dict(prompt="a red circle on a blue background", steps=8, seed=7, preview_method="none")

    def image(**fields):
        return np.asarray(engine.run(GenerationRequest(**base, **fields)).image, dtype=int)

    assert np.abs(image(scheduler="Euler a") - image(scheduler="Euler a", ensd=31337)).max() > 10
    assert np.array_equal(image(scheduler="Euler"), image(scheduler="Euler", ensd=31337))


def test_a_saved_run_records_its_convention_and_reads_back_as_it_ran(engine, tmp_path):
    request = GenerationRequest(prompt="a red circle on a blue background", scheduler="DPM++ 2M SDE", steps=6, seed=3,
                                noise="A1111 NV", ensd=31337, preview_method="none")
    first = engine.run(request)
    png = engine.save(first, tmp_path)
    recipe = engine.read_recipe(png)
    assert (recipe.fields["noise"], recipe.fields["ensd"]) == ("A1111 NV", 31337)
    again = engine.run(recipe.request(model="demo"))
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    from PIL import Image

    with Image.open(png) as image:
        assert "RNG: NV, ENSD: 31337" in image.text["parameters"]

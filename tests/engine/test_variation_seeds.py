"""A1111's variation seeds and seed resize: the starting noise as A1111's ImageRNG.first() draws it, runs that use
it, and the infotext fields both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusers_tui.engine import GenerationRequest, RequestError
from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.engine.files.reading import parse_a1111
from diffusers_tui.engine.sampling import variation


def _a1111_slerp(val, low, high):
    """modules/rng.py's slerp, transcribed here as a second reading to check the engine's against."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def _randn(seed, shape):  # A1111's randn(seed, shape) with its CPU source
    torch.manual_seed(seed)
    return torch.randn(shape)


def test_the_starting_noise_is_a1111s_slerp_and_resize_on_the_same_generator():
    request = GenerationRequest(prompt="x", model="demo", seed=11, variation_seed=22, variation_strength=0.3)
    ours = variation.starting_noise(request, (1, 4, 8, 8), "A1111 CPU", "cpu", torch.float32)[0]
    assert torch.allclose(ours, _a1111_slerp(0.3, _randn(11, (4, 8, 8)), _randn(22, (4, 8, 8))), atol=1e-6)
    resized = GenerationRequest(prompt="x", model="demo", seed=11, seed_resize_from=(32, 48))
    noise = variation.starting_noise(resized, (1, 4, 8, 8), "A1111 CPU", "cpu", torch.float32)[0]
    small, full = _randn(11, (4, 6, 4)), _randn(11, (4, 8, 8))  # 48x32 px -> 6 rows, 4 columns of latent
    expected = full.clone()
    expected[:, 1:7, 2:6] = small
    assert torch.equal(noise, expected)
    bigger = GenerationRequest(prompt="x", model="demo", seed=11, seed_resize_from=(96, 96))  # cropped, centred
    assert torch.equal(variation.starting_noise(bigger, (1, 4, 8, 8), "A1111 CPU", "cpu", torch.float32)[0],
                       _randn(11, (4, 12, 12))[:, 2:10, 2:10])


def test_runs_use_it_strength_zero_is_the_seed_and_one_is_the_variation_seed(engine, tmp_path):
    base = dict(prompt="a red circle on a blue background", model="demo", steps=8, preview_method="none",
                scheduler="Euler")  # deterministic after the start: the start decides the picture
    plain = engine.run(GenerationRequest(**base, seed=5))
    other = engine.run(GenerationRequest(**base, seed=6))
    zero = engine.run(GenerationRequest(**base, seed=5, variation_seed=6, variation_strength=0.0))
    one = engine.run(GenerationRequest(**base, seed=5, variation_seed=6, variation_strength=1.0))
    half = engine.run(GenerationRequest(**base, seed=5, variation_seed=6, variation_strength=0.5))
    pixels = {name: np.asarray(result.image, dtype=np.int16)
              for name, result in (("plain", plain), ("other", other), ("zero", zero), ("one", one), ("half", half))}
    assert np.array_equal(pixels["zero"], pixels["plain"])
    assert np.abs(pixels["one"] - pixels["other"]).max() <= 1
    assert np.abs(pixels["half"] - pixels["plain"]).max() > 5 and np.abs(pixels["half"] - pixels["other"]).max() > 5
    line = png_recipe.a1111_parameters(half.request, half.recipe)
    assert "Variation seed: 6, Variation seed strength: 0.5" in line
    fields = parse_a1111(line).fields
    assert (fields["variation_seed"], fields["variation_strength"]) == (6, 0.5)
    png = engine.save(half, tmp_path)
    again = engine.run(engine.read_recipe(png).request(preview_method="none"))
    assert np.array_equal(np.asarray(again.image), np.asarray(half.image))


def test_bad_variation_values_are_one_clear_line():
    with pytest.raises(RequestError, match="needs the variation seed it moves toward"):
        GenerationRequest(prompt="x", model="demo", variation_strength=0.5)
    with pytest.raises(RequestError, match="variation_strength"):
        GenerationRequest(prompt="x", model="demo", variation_seed=1, variation_strength=1.5)
    with pytest.raises(RequestError, match="not a multiple of 8"):
        GenerationRequest(prompt="x", model="demo", seed_resize_from=(30, 64))
    assert "seed_resize_from" not in parse_a1111("x\nSteps: 4, Seed: 1, Seed resize from: -1x-1").fields


def test_a_comparison_lane_with_a_variation_seed_is_its_own_run(engine):
    from diffusers_tui.engine import build_comparison

    base = GenerationRequest(prompt="a red circle on a blue background", model="demo", steps=6, seed=5,
                             variation_seed=9, variation_strength=0.4, preview_method="none")
    race = engine.compare(build_comparison(base, ["Euler", "DPM++ 2M"], "6"))
    for lane in race.lanes:
        sampler = "Euler" if lane.lane.scheduler.startswith("Euler") else "DPM++ 2M"
        alone = engine.run(GenerationRequest(**{**base.to_dict(), "scheduler": sampler}))
        assert np.abs(np.asarray(lane.result.image, dtype=np.int16) - np.asarray(alone.image, dtype=np.int16)).max() <= 1

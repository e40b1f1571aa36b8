"""A1111's batches: images per model call, calls in a row, seeds counting up; each image a run of its own."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffusers_tui.engine import GenerationRequest, RequestError
from diffusers_tui.engine.files.recipe import read_parameters, read_recipe

PROMPT = "a red circle on a blue background"


def _levels_apart(a, b) -> int:
    return int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max())


@pytest.mark.parametrize("scheduler", ["Euler", "Euler a", "DPM++ 2M SDE", None])
def test_a_batch_of_4_equals_4_single_runs_with_those_seeds(engine, scheduler):
    snapshots = []
    batch = engine.run(GenerationRequest(prompt=PROMPT, scheduler=scheduler, steps=8, seed=5, batch_size=4),
                       on_step=snapshots.append)
    assert [item.request.seed for item in batch.batch] == [5, 6, 7, 8]
    assert batch.model_calls == 8 and len(snapshots) == 8  # one model call a step for all four
    for item in batch.batch:
        alone = engine.run(GenerationRequest(prompt=PROMPT, scheduler=scheduler, steps=8, seed=item.request.seed))
        assert _levels_apart(item.image, alone.image) <= 1
    assert batch.image.size == (128, 128)  # the grid: 2 x 2
    assert np.array_equal(np.asarray(batch.image.crop((64, 64, 128, 128))), np.asarray(batch.batch[3].image))


def test_the_live_record_lays_the_batch_out_as_its_grid(engine):
    one = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=3, seed=1))
    three = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=3, seed=1, batch_size=3))
    side = one.frames[-1].latents.noisy.shape[-1]
    grid = three.frames[-1].latents.noisy
    assert grid.shape[-2:] == (2 * side, 2 * side)  # 3 images in rows of 2, the fourth place empty
    assert float(grid[:, side:, side:].abs().max()) == 0.0
    assert np.allclose(grid[:, :side, :side].numpy(), one.frames[-1].latents.noisy.numpy(), atol=1e-4)


def test_a_batch_count_runs_calls_in_a_row_counting_seeds_on(engine):
    snapshots = []
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=4, seed=20, batch_size=2,
                                          batch_count=3), on_step=snapshots.append)
    assert [item.request.seed for item in result.batch] == [20, 21, 22, 23, 24, 25]
    assert result.model_calls == result.total_calls == 12
    assert [s.step for s in snapshots] == list(range(1, 13)) and snapshots[-1].total == 12
    assert result.image.size == (192, 128)  # six in rows of three


def test_with_a_variation_the_seed_stays_and_the_variation_seed_counts_up(engine):
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=3, seed=4, batch_count=3,
                                          variation_seed=100, variation_strength=0.3))
    assert [(item.request.seed, item.request.variation_seed) for item in result.batch] == [(4, 100), (4, 101),
                                                                                            (4, 102)]


def test_each_image_is_saved_with_its_own_seed_and_recipe_and_the_batch_as_a_grid(engine, tmp_path):
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=4, seed=7, batch_size=3))
    grid = engine.save(result, tmp_path)
    images = sorted(path for path in tmp_path.rglob("[!.]*.png") if path != grid)
    assert len(images) == 3 and Image.open(grid).size == (128, 128)
    for path, seed in zip(images, (7, 8, 9)):
        assert f"Seed: {seed}," in read_parameters(path)
        recipe = read_recipe(path)
        assert recipe["request"]["seed"] == seed and recipe["request"]["batch_size"] == 1
        again = engine.run(GenerationRequest.from_dict(recipe["request"]))
        assert _levels_apart(again.image, Image.open(path)) <= 1
    assert read_recipe(grid)["request"]["batch_size"] == 3  # the grid's recipe re-runs the batch


def test_what_a_batch_cannot_do_is_said_in_one_line(engine, tiny_ddpm):
    for fields, words in (({"batch_size": 17}, "batch_size: 17 is outside 1 to 16"),
                          ({"batch_count": 0}, "batch_count: 0 is outside 1 to 100"),
                          ({"batch_size": 2, "variation_seed": 9, "variation_strength": 0.5}, "use a batch count")):
        with pytest.raises(RequestError, match=words):
            GenerationRequest(prompt=PROMPT, **fields)
    with pytest.raises(RequestError, match="ComfyUI draws a batch's noise from one seed"):
        engine.run(GenerationRequest(prompt=PROMPT, scheduler="euler", steps=2, batch_size=2))
    with pytest.raises(RequestError, match="UNet loop runs one image a call"):
        engine.run(GenerationRequest(model=str(tiny_ddpm), steps=2, batch_size=2))
    counted = engine.run(GenerationRequest(model=str(tiny_ddpm), steps=2, seed=3, batch_count=2))
    assert [item.request.seed for item in counted.batch] == [3, 4]


def test_an_image_of_the_batch_is_its_place_in_the_grid(engine):
    from diffusers_tui.engine import batch_cell

    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=3, seed=2, batch_size=3))
    for index, item in enumerate(result.batch):
        assert np.array_equal(np.asarray(batch_cell(result.image, 3, index)), np.asarray(item.image))

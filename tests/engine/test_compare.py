"""Scheduler comparisons: batched equals one by one, fair starts, equal calls, distances, saving."""

import json
import threading

import numpy as np
import pytest

from diffusers_tui.engine.files import compare_outputs
from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.engine.comparison import ComparisonRequest, Lane, parse_lanes, parse_step_list
from diffusers_tui.engine.errors import RequestError, SchedulerUnavailableError
from diffusers_tui.engine.request import GenerationRequest

# Deterministic and ancestral, first and second order, multistep, and PLMS's extra call.
MIXED = ("Euler", "Euler a", "Heun", "DPM++ 2M Karras", "DPM++ 2M SDE", "DPM2 a", "DDIM", "DDPM", "PLMS", "UniPC")


def _pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("model_fixture", ["tiny_sd", "tiny_ddpm"])
def test_batched_and_one_by_one_give_the_same_images(engine, request, model_fixture):
    model = str(request.getfixturevalue(model_fixture))
    base = GenerationRequest(prompt="a red square", model=model, seed=3, steps=4, preview_method="none")
    lanes = tuple(Lane(name, 4) for name in MIXED)
    batched = engine.compare(ComparisonRequest(base, lanes, batch=True))
    one_by_one = engine.compare(ComparisonRequest(base, lanes, batch=False))
    assert batched.batched and not one_by_one.batched
    for fast, slow in zip(batched.lanes, one_by_one.lanes):
        assert fast.result.model_calls == slow.result.model_calls == fast.result.total_calls
        assert np.abs(_pixels(fast.result.image) - _pixels(slow.result.image)).max() <= 2, fast.lane.label
    # The check can fail: the schedulers really do give different images.
    euler, ddim = batched.lanes[0].result.image, batched.lanes[6].result.image
    assert np.abs(_pixels(euler) - _pixels(ddim)).max() > 2


def test_one_by_one_matches_a_plain_run(engine, tiny_sd):
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=9, steps=3, preview_method="none")
    comparison = engine.compare(ComparisonRequest(base, (Lane("Euler a", 3),)))
    solo = engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=9, steps=3,
                                        scheduler="Euler a", preview_method="none"))
    assert np.abs(_pixels(comparison.lanes[0].result.image) - _pixels(solo.image)).max() <= 2


def test_every_lane_starts_from_the_noise_a_solo_run_starts_from(engine, tiny_ddpm):
    # Each lane's first recorded sample equals a solo run's with the same seed and scheduler:
    # so every lane starts from the seed's noise, as a solo run does.
    base = GenerationRequest(model=str(tiny_ddpm), seed=4, steps=3, preview="noisy")
    first_frames = {}
    lanes = (Lane("DDIM", 3), Lane("DDPM", 3), Lane("UniPC", 5))
    engine.compare(ComparisonRequest(base, lanes), on_lane_step=lambda i, s: first_frames.setdefault(i, engine.preview(s)))
    for index, lane in enumerate(lanes):
        solo = engine.run(GenerationRequest(model=str(tiny_ddpm), seed=4, steps=lane.steps, scheduler=lane.scheduler,
                                            preview="noisy"))
        assert np.abs(_pixels(first_frames[index]) - _pixels(engine.preview(solo.frames[0]))).max() <= 1


def test_equal_calls_halves_second_order_steps(engine, tiny_sd):
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=1, preview_method="none")
    result = engine.compare(ComparisonRequest(base, (Lane("Euler", 6), Lane("Heun", 6), Lane("DPM2", 6)),
                                              equal_calls=True))
    calls = {lane.lane.scheduler: lane.result.model_calls for lane in result.lanes}
    assert calls == {"Euler": 6, "Heun": 5, "DPM2": 5}  # 3 steps of a 2-call solver: 2*3-1
    assert [row["steps"] for row in result.table()] == [6, 3, 3]


def test_distance_to_the_reference_is_zero_for_the_same_run(engine, tiny_sd):
    base = GenerationRequest(prompt="a cat", model=str(tiny_sd), seed=2, preview_method="none")
    result = engine.compare(ComparisonRequest(base, (Lane("DPM++ 2M", 8), Lane("Euler", 2)),
                                              reference=Lane("DPM++ 2M", 8)))
    assert result.reference is not None and result.reference.result.model_calls == 8
    assert result.lanes[0].distance == pytest.approx(0.0, abs=0.5)
    assert result.lanes[1].distance > 1.0
    assert [row["rmse_to_reference"] for row in result.table()] == [round(l.distance, 2) for l in result.lanes]


def test_cancel_stops_every_lane_within_a_round(engine, tiny_sd):
    cancel = threading.Event()
    seen = []

    def on_lane_step(index, snapshot):
        seen.append((index, snapshot.step))
        if snapshot.step == 2:
            cancel.set()

    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=1, preview_method="none")
    result = engine.compare(ComparisonRequest(base, (Lane("Euler", 20), Lane("UniPC", 20))), on_lane_step, cancel)
    assert result.cancelled
    assert max(step for _, step in seen) == 2
    assert all(lane.result.cancelled and lane.result.image is None for lane in result.lanes)


def test_sdxl_lanes_run_one_by_one_with_a_note(engine, tiny_sdxl):
    base = GenerationRequest(prompt="a dog", model=str(tiny_sdxl), seed=1, steps=2, preview_method="none")
    result = engine.compare(ComparisonRequest(base, (Lane("Euler", 2), Lane("DDIM", 2))))
    assert not result.batched and "one after another" in result.notes[0]
    assert all(lane.result.image is not None for lane in result.lanes)


def test_bad_comparisons_say_what_to_fix():
    base = GenerationRequest()
    with pytest.raises(RequestError, match="mark at least one"):
        ComparisonRequest(base, ())
    with pytest.raises(SchedulerUnavailableError, match="did you mean Euler"):
        ComparisonRequest(base, (Lane("Eulr", 10),))
    with pytest.raises(RequestError, match="marked twice"):
        ComparisonRequest(base, (Lane("Euler", 10), Lane("Euler", 10)))
    with pytest.raises(RequestError, match="outside 1 to 1000"):
        ComparisonRequest(base, (Lane("Euler", 0),))
    with pytest.raises(RequestError, match="like 10,20,30"):
        parse_step_list("10,abc")
    assert parse_lanes("Euler, UniPC", "10,20,10") == (
        Lane("Euler", 10), Lane("Euler", 20), Lane("UniPC", 10), Lane("UniPC", 20))


def test_saved_comparison_has_grid_images_with_recipes_and_tables(engine, tiny_sd, tmp_path):
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=5, preview_method="none")
    result = engine.compare(ComparisonRequest(base, parse_lanes("Euler,UniPC", "2,3"), reference=Lane("Euler", 10)))
    folder = compare_outputs.save_comparison(result, tmp_path)
    again = compare_outputs.save_comparison(result, tmp_path)
    assert folder != again and folder.name.startswith("00001-") and again.name.startswith("00002-")
    table = json.loads((folder / "table.json").read_text())
    assert [(r["scheduler"], r["steps"]) for r in table["runs"]] == [("Euler", 2), ("Euler", 3), ("UniPC", 2),
                                                                   ("UniPC", 3)]
    assert table["reference"]["steps"] == 10 and table["distance"].startswith("RMSE")
    for row in table["runs"]:
        recipe = png_recipe.read_recipe(folder / row["file"])
        assert recipe["request"]["scheduler"] == row["scheduler"] and recipe["request"]["seed"] == 5
    csv_lines = (folder / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("scheduler,steps,model_calls,seconds,rmse_to_reference") and len(csv_lines) == 5
    from PIL import Image

    grid = Image.open(folder / "grid.png")
    assert grid.width >= 2 * compare_outputs.MIN_CELL and grid.height >= 3 * compare_outputs.MIN_CELL
    index = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert [entry["kind"] for entry in index] == ["comparison", "comparison"]

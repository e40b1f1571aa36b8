"""Studies: axes parsed as A1111's X/Y/Z plot takes them, lanes for every combination, batched lanes that
change guidance, seed and prompt equal to solo runs, a reference per condition, and the grid's sub-grids."""

import json

import numpy as np
import pytest

from diffusers_tui.engine.axes import parse_axis
from diffusers_tui.engine.building import build_comparison
from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.files import compare_outputs
from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.engine.request import GenerationRequest


def _pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_axes_read_lists_ranges_and_aliases():
    assert parse_axis("guidance=3,5,7.5").values == (3.0, 5.0, 7.5)
    assert parse_axis("CFG = 4").kind == "guidance"
    assert parse_axis("seed=1-4").values == (1, 2, 3, 4)
    assert parse_axis("seed=1-9 (+3)").values == (1, 4, 7)
    assert parse_axis("steps=10-40 [4]").values == (10, 20, 30, 40)
    assert parse_axis("noise=comfyui,a1111 cpu").values == ("ComfyUI", "A1111 CPU")
    assert parse_axis("prompt=red, green ,blue").values == ("red", "green", "blue")
    assert parse_axis("sampler=Euler,DPM++ 2M").spec() == "sampler=Euler,DPM++ 2M"


@pytest.mark.parametrize("text, complaint", [
    ("guidance", "is not KIND=VALUES"),
    ("colour=red", "kinds: sampler"),
    ("guidance=", "has no values"),
    ("guidance=3,nan", "not a guidance from 0 to 50"),
    ("guidance=51", "not a guidance"),
    ("steps=0", "outside 1 to 1000"),
    ("steps=²", "not a whole number"),
    ("seed=9-1", "runs backwards"),
    ("seed=1-1000000", "more than 64 values"),
    ("noise=loud", "not a noise convention"),
    ("seed=3,3", "names a value twice"),
])
def test_bad_axes_say_what_to_fix(text, complaint):
    with pytest.raises(RequestError, match=complaint):
        parse_axis(text)


BASE = GenerationRequest(prompt="a red circle on a blue background", seed=5)


def test_lanes_are_every_combination_placed_on_x_y_z():
    study = build_comparison(BASE, ["Euler", "DPM++ 2M"], "10", axes={"x": "guidance=3,7", "z": "seed=1,2"})
    x, y, z = study.axes
    assert (x.kind, y.kind, z.kind) == ("guidance", "sampler", "seed")  # the samplers take the free place, y
    assert len(study.lanes) == 8
    assert [lane.at for lane in study.lanes[:4]] == [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)]
    last = study.lanes[-1]
    assert (last.scheduler, last.steps, dict(last.settings)) == ("DPM++ 2M", 10, {"guidance": 7.0, "seed": 2})
    requests = study.lane_requests()
    assert (requests[-1].guidance, requests[-1].seed, requests[-1].scheduler) == (7.0, 2, "DPM++ 2M")


def test_a_plain_comparison_keeps_samplers_down_and_steps_across():
    study = build_comparison(BASE, ["Euler", "UniPC"], "10,20")
    assert [axis.kind if axis else None for axis in study.axes] == ["steps", "sampler", None]
    assert [lane.label for lane in study.lanes] == ["Euler · 10", "Euler · 20", "UniPC · 10", "UniPC · 20"]


def test_prompt_search_replace_and_schedule_axes():
    study = build_comparison(BASE, ["Euler"], "10", axes={"x": "prompt=red,green", "y": "schedule=Karras,Exponential"})
    prompts = [request.prompt for request in study.lane_requests()]
    assert prompts[:2] == ["a red circle on a blue background", "a green circle on a blue background"]
    assert [lane.scheduler for lane in study.lanes] == ["Euler Karras", "Euler Karras", "Euler Exponential",
                                                        "Euler Exponential"]


@pytest.mark.parametrize("axes, complaint", [
    ({"x": "guidance=3,5", "y": "cfg=7,9"}, "x and y axes both vary the guidance"),
    ({"x": "prompt=purple,red"}, "not in the prompt"),
    ({"x": "guidance=3,5", "y": "seed=1,2", "z": "noise=ComfyUI,A1111 CPU"}, "x, y and z are taken"),
    ({"w": "seed=1,2"}, "not an axis place"),
    ({"x": "seed=1-10", "y": "guidance=1-50"}, "guidance"),
])
def test_bad_studies_say_what_to_fix(axes, complaint):
    with pytest.raises(RequestError, match=complaint):
        build_comparison(BASE, ["Euler", "UniPC"], "10", axes=axes)


def test_batched_study_lanes_with_their_own_guidance_seed_and_prompt_equal_solo_runs(engine, tiny_sd):
    """One UNet call per round serves lanes whose guidance, seed and prompt differ: each equals its solo run."""
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=3, preview_method="none")
    study = build_comparison(base, ["DPM++ 2M"], "3",
                             axes={"x": "guidance=1,6", "y": "seed=3,8", "z": "prompt=red,blue"})
    result = engine.compare(study)
    assert result.batched and len(result.lanes) == 8
    for lane in result.lanes:
        solo = engine.run(lane.result.request)
        assert np.abs(_pixels(lane.result.image) - _pixels(solo.image)).max() <= 2, lane.lane.label
    # The check can fail: the axes really change the picture.
    images = {lane.lane.at: _pixels(lane.result.image) for lane in result.lanes}
    for one, other in (((0, 0, 0), (1, 0, 0)), ((0, 0, 0), (0, 1, 0)), ((1, 0, 0), (1, 0, 1))):
        assert np.abs(images[one] - images[other]).max() > 2, (one, other)  # guidance, seed, prompt (guided)


def test_each_lane_is_measured_against_the_reference_of_its_own_seed(engine, tiny_sd, tmp_path):
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4, preview_method="none")
    study = build_comparison(base, ["Euler"], "4", reference="Euler:4", axes={"x": "seed=3,8"})
    result = engine.compare(study)
    assert [dict(reference.lane.settings) for reference in result.references] == [{"seed": 3}, {"seed": 8}]
    # The reference is the lane's own run at its own seed: distance 0 for each; against the other seed's, not.
    assert [lane.distance for lane in result.lanes] == [0.0, 0.0]
    assert compare_outputs.reference_row(result, 0) == list(result.references)
    folder = compare_outputs.save_comparison(result, tmp_path)
    table = json.loads((folder / "table.json").read_text())
    assert table["axes"] == {"x": "seed=3,8"} and [run["seed"] for run in table["runs"]] == ["3", "8"]
    assert [reference["settings"] for reference in table["references"]] == [{"seed": 3}, {"seed": 8}]
    for reference in table["references"]:
        assert png_recipe.read_recipe(folder / reference["file"])["request"]["seed"] == reference["settings"]["seed"]


def test_grid_puts_each_z_value_in_a_sub_grid_of_its_own(engine, tiny_sd, tmp_path):
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=2, preview_method="none")
    flat = engine.compare(build_comparison(base, ["Euler"], "2", axes={"x": "guidance=2,5"}))
    split = engine.compare(build_comparison(base, ["Euler"], "2", axes={"x": "guidance=2,5", "z": "seed=3,4"}))
    flat_grid, split_grid = compare_outputs.grid_image(flat), compare_outputs.grid_image(split)
    assert split_grid.width == 2 * flat_grid.width + compare_outputs.GRID_GAP
    assert split_grid.height == flat_grid.height + compare_outputs.LABEL_HEIGHT  # the sub-grids' titles
    # The second sub-grid's first cell is the seed-4 lane's picture, scaled into the cell.
    cell = flat_grid.width + compare_outputs.GRID_GAP
    lane = next(lane for lane in split.lanes if lane.lane.at == (0, 0, 1))
    scale = -(-compare_outputs.MIN_CELL // lane.result.image.width)
    label_w = flat_grid.width - 2 * lane.result.image.width * scale
    top = 2 * compare_outputs.LABEL_HEIGHT
    pasted = split_grid.crop((cell + label_w, top, cell + label_w + lane.result.image.width * scale,
                              top + lane.result.image.height * scale))
    expected = lane.result.image.convert("RGB").resize(pasted.size, 0)
    assert np.array_equal(_pixels(pasted), _pixels(expected))


def test_many_seeds_give_each_cell_a_mean_a_spread_and_a_ranking_that_shows_disagreement(engine, tiny_sd, tmp_path):
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=7, steps=3, preview_method="none")
    study = build_comparison(base, ["Euler", "DPM++ 2M", "Euler a"], "3", reference="DPM++ 2M:12", seeds=4)
    assert len(study.lanes) == 12 and [lane.at[3] for lane in study.lanes[:4]] == [0, 1, 2, 3]
    result = engine.compare(study)
    assert [lane.result.request.seed for lane in result.lanes[:4]] == [7, 8, 9, 10]  # counting up, as A1111 does
    assert len(result.references) == 4  # one reference per seed
    summary = {row["scheduler"]: row for row in result.summary()}
    for name in ("Euler", "DPM++ 2M", "Euler a"):
        distances = [lane.distance for lane in result.lanes if lane.lane.scheduler == name]
        assert summary[name]["seeds"] == 4
        assert summary[name]["rmse_mean"] == round(float(np.mean(distances)), 2)
        assert summary[name]["rmse_spread"] == round(float(np.std(distances, ddof=1)), 2)
    ranking = result.ranking()
    assert [row["rmse_mean"] for row in ranking] == sorted(row["rmse_mean"] for row in ranking)
    assert sum(row["first_on_seeds"] for row in ranking) == 4  # each seed has one closest run
    # "next closer" counts the seeds on which the run ranked below was closer, from the lanes themselves.
    by = {(lane.lane.scheduler, lane.lane.at[3]): lane.distance for lane in result.lanes}
    for upper, lower in zip(ranking, ranking[1:]):
        upper_name, lower_name = (row["lane"].split(" · ")[0] for row in (upper, lower))
        assert upper["next_closer_on_seeds"] == sum(by[(lower_name, k)] < by[(upper_name, k)] for k in range(4))
    folder = compare_outputs.save_comparison(result, tmp_path)
    table = json.loads((folder / "table.json").read_text())
    assert table["seeds"] == 4 and len(table["runs"]) == 12 and len(table["summary"]) == 3
    assert (folder / "summary.csv").read_text().splitlines()[0].startswith("scheduler,steps,seeds")
    # The grid shows each cell's first seed: one column, three rows and the reference row.
    plain = engine.compare(build_comparison(base, ["Euler", "DPM++ 2M", "Euler a"], "3", reference="DPM++ 2M:12"))
    assert compare_outputs.grid_image(result).size == compare_outputs.grid_image(plain).size


def test_seeds_and_a_seed_axis_cannot_both_vary_the_seed():
    with pytest.raises(RequestError, match="seed axis and --seeds"):
        build_comparison(BASE, ["Euler"], "10", axes={"x": "seed=1,2"}, seeds=3)
    with pytest.raises(RequestError, match="seeds"):
        build_comparison(BASE, ["Euler"], "10", seeds=0)

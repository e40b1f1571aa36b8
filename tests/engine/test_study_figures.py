"""A study's measures (RMSE, latent L2, SSIM, trajectories), references at a multiple of each lane's steps,
and the figures with their data: convergence, schedules, trajectories."""

import csv
import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from diffusers_tui.engine.building import build_comparison
from diffusers_tui.engine.comparison import OWN_REFERENCE, Lane, image_distance, parse_reference
from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.files import compare_outputs, study_figures
from diffusers_tui.engine.request import GenerationRequest


@pytest.fixture()
def base(tiny_sd):
    return GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4, preview_method="latent")


def test_a_lane_equal_to_its_reference_measures_zero_and_others_do_not(engine, base):
    result = engine.compare(build_comparison(base, ["Euler", "Euler a"], "4", reference="Euler:4"))
    same, other = result.lanes
    assert same.metrics == {"rmse": 0.0, "ssim": 1.0, "latent_l2": 0.0}
    assert other.metrics["rmse"] == pytest.approx(image_distance(other.result.image, result.reference.result.image))
    assert other.metrics["ssim"] < 0.99 and other.metrics["latent_l2"] > 0.1
    # Euler's last x0 estimate is its final sample (σ reaches 0): the trajectory ends at the latent distance.
    for lane in (same, other):
        fractions = [fraction for fraction, _ in lane.trajectory]
        assert fractions == [call / lane.result.total_calls for call in range(1, lane.result.total_calls + 1)]
    assert same.trajectory[-1][1] == pytest.approx(0.0, abs=1e-5) and same.trajectory[0][1] > 1.0
    assert result.table()[1]["ssim_to_reference"] == round(other.metrics["ssim"], 4)


def test_nothing_recorded_means_no_latent_figures_but_pixels_still_measured(engine, base):
    from dataclasses import replace

    result = engine.compare(build_comparison(replace(base, preview_method="none"), ["Euler"], "4", reference="Euler:8"))
    lane = result.lanes[0]
    assert set(lane.metrics) == {"rmse", "ssim"} and lane.trajectory == ()


def test_a_lane_can_be_measured_against_its_own_run_at_four_times_the_steps(engine, base):
    assert parse_reference("4x") == Lane(OWN_REFERENCE, 4)
    with pytest.raises(RequestError, match="2x to 64x"):
        parse_reference("1x")
    study = build_comparison(base, ["Euler", "DPM++ 2M"], "2,3", reference="4x")
    assert study.reference_lanes() == [Lane("Euler", 8), Lane("Euler", 12), Lane("DPM++ 2M", 8),
                                       Lane("DPM++ 2M", 12)]
    result = engine.compare(study)
    for lane in result.lanes:
        reference = result.reference_for(lane.lane)
        assert (reference.lane.scheduler, reference.result.request.steps) == (lane.lane.scheduler,
                                                                               4 * lane.lane.steps)
        assert lane.distance == pytest.approx(image_distance(lane.result.image, reference.result.image))


def test_figures_are_saved_with_their_data(engine, base, tmp_path):
    study = build_comparison(base, ["Euler", "UniPC"], "2,4", reference="Euler:12", seeds=2)
    result = engine.compare(study)
    folder = compare_outputs.save_comparison(result, tmp_path)
    for name in ("convergence", "schedules", "trajectories"):
        assert Image.open(folder / f"{name}.png").size[0] > 300
        assert ElementTree.parse(folder / f"{name}.svg").getroot().tag.endswith("svg")
        rows = list(csv.DictReader((folder / f"{name}.csv").open()))
        assert rows and json.loads((folder / f"{name}.json").read_text())["figure"] == name
    # Convergence: one point per sampler and step count, the mean over the two seeds of each lane's figures.
    points = {(row["series"], int(row["steps"])): row for row in csv.DictReader((folder / "convergence.csv").open())}
    assert set(points) == {("Euler", 2), ("Euler", 4), ("UniPC", 2), ("UniPC", 4)}
    for (series, steps), point in points.items():
        lanes = [lane for lane in result.lanes if lane.lane.scheduler == series and lane.lane.steps == steps]
        assert float(point["rmse"]) == pytest.approx(np.mean([lane.metrics["rmse"] for lane in lanes]), abs=1e-5)
        assert float(point["one_minus_ssim"]) == pytest.approx(
            np.mean([1 - lane.metrics["ssim"] for lane in lanes]), abs=1e-5)
        assert int(point["seeds"]) == 2 and float(point["model_calls"]) == lanes[0].result.model_calls
    # Schedules: each lane's σ, first to last, and samplers sharing a schedule share its line.
    schedules = study_figures.schedule_data(result)
    euler = [row["sigma"] for row in schedules if row["lane"] == "Euler · 4 steps"]
    assert euler == [round(sigma, 6) for sigma in result.lanes[2].sigmas] and euler[-1] == 0.0
    assert euler == sorted(euler, reverse=True)
    # Trajectories: the first seed's lanes only.
    lanes = {row["lane"] for row in study_figures.trajectory_data(result)}
    assert lanes == {"Euler · 2 steps", "Euler · 4 steps", "UniPC · 2 steps", "UniPC · 4 steps"}


def test_a_comparison_without_reference_draws_only_its_schedules(engine, base, tmp_path):
    folder = compare_outputs.save_comparison(engine.compare(build_comparison(base, ["Euler"], "2,3")), tmp_path)
    assert (folder / "schedules.png").exists()
    assert not (folder / "convergence.png").exists() and not (folder / "trajectories.png").exists()


def test_a_saved_study_reads_back_as_its_figures_data_and_damaged_files_are_named(engine, base, tmp_path):
    from diffusers_tui.engine.errors import UserFacingError
    from diffusers_tui.engine.files.saved_study import read_study

    result = engine.compare(build_comparison(base, ["Euler", "UniPC"], "2,4", reference="Euler:12"))
    folder = compare_outputs.save_comparison(result, tmp_path)
    study = read_study(folder)
    assert study.figures["convergence"] == json.loads((folder / "convergence.json").read_text())["rows"]
    assert len(study.runs) == 4 and study.problems == [] and study.grid == folder / "grid.png"
    # Edited by hand: a NaN, a row of the wrong shape, a file that is not JSON. Each is named; the rest reads.
    (folder / "schedules.json").write_text('{"figure": "schedules", "rows": [{"lane": "x", "steps": 2, "step": 0, '
                                           '"sigma": NaN}]}')
    (folder / "trajectories.json").write_text('{"figure": "trajectories", "rows": [[1, 2]]}')
    (folder / "convergence.json").write_bytes(b"\xff\xfe not json")
    study = read_study(folder)
    assert study.figures == {"convergence": [], "schedules": [], "trajectories": []}
    assert len(study.problems) == 3 and "not a finite number" in " ".join(study.problems)
    (folder / "table.json").write_text("[]")
    with pytest.raises(UserFacingError, match="not a comparison table"):
        read_study(folder)

"""Outputs: numbered names, recipes in PNG chunks, atomic never-overwrite, the index."""

import errno
import json
import multiprocessing
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from diffusers_tui.engine.files import outputs
from diffusers_tui.engine.files import recipe as png_recipe
from diffusers_tui.engine.errors import OutputError, RequestError
from diffusers_tui.engine.request import GenerationRequest, GenerationResult


def _result(prompt="a red circle", seed=1, image=None):
    request = GenerationRequest(prompt=prompt, scheduler="DPM++ 2M Karras", steps=7, seed=seed)
    recipe = {"model": "demo", "scheduler_name": "DPM++ 2M Karras", "scheduler_class": "DPMSolverMultistepScheduler",
              "scheduler_config": {"use_karras_sigmas": True}, "width": 8, "height": 8, "mode": "text-to-image"}
    return GenerationResult(request, image or Image.new("RGB", (8, 8), "red"), False, 1.0, 7, 7, None, recipe)


def test_names_are_numbered_dated_and_safe(tmp_path):
    first = outputs.save_result(_result(prompt="../../etc/passwd\x01 /abs ☃" * 50), tmp_path)
    second = outputs.save_result(_result(), tmp_path)
    assert first.parent.parent == tmp_path and first.parent.name.count("-") == 2
    assert first.name == "00001-dpmpp-2m-karras-7-1.png"
    assert second.name == "00002-dpmpp-2m-karras-7-1.png"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()].count(".saving-") == 0


def test_png_carries_a1111_parameters_and_the_json_recipe_unchanged(tmp_path):
    prompt = "ünïcödé ☃, \"quotes\"\nsecond line"
    path = outputs.save_result(_result(prompt=prompt), tmp_path)
    parameters = png_recipe.read_parameters(path)
    assert parameters.startswith(prompt)
    assert "Steps: 7, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 1, Size: 8x8" in parameters
    recipe = png_recipe.read_recipe(path)
    assert recipe["request"]["prompt"] == prompt
    assert recipe["scheduler_class"] == "DPMSolverMultistepScheduler"
    assert "DPMSolverMultistepScheduler.from_config" in recipe["reproduce"]


def test_index_gets_one_valid_line_per_image(tmp_path):
    for seed in range(3):
        outputs.save_result(_result(seed=seed), tmp_path)
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["seed"] for line in lines] == [0, 1, 2]
    assert all((tmp_path / json.loads(line)["path"]).exists() for line in lines)


def test_step_snapshots_go_into_a_run_folder(tmp_path):
    from tests.frames import recorded_step

    snaps = [recorded_step(s, 100, side=8, red=s) for s in (50, 100)]
    path = outputs.save_result(_result(), tmp_path, snaps)
    assert sorted(p.name for p in path.with_suffix("").iterdir()) == ["step_0050.png", "step_0100.png"]
    with Image.open(path.with_suffix("") / "step_0050.png") as saved:
        assert saved.size == (8, 8) and saved.getpixel((0, 0)) == (50, 0, 0)  # the record, in full


def _save_many(folder: str, worker: int, count: int) -> None:
    """What one app instance's save worker does, `count` times (every fifth with its steps)."""
    from tests.frames import recorded_step

    for i in range(count):
        steps = [recorded_step(s, 7) for s in (3, 7)] if i % 5 == 0 else None
        outputs.save_result(_result(seed=worker * 1000 + i), folder, steps)


def _save_comparisons(folder: str, count: int) -> None:
    from diffusers_tui.engine.files import compare_outputs
    from diffusers_tui.engine.comparison import ComparisonRequest, ComparisonResult, Lane, LaneResult

    for i in range(count):
        lane_result = _result(seed=90_000 + i)
        request = ComparisonRequest(lane_result.request, (Lane("Euler", 7),))
        compare_outputs.save_comparison(
            ComparisonResult(request, (LaneResult(Lane("Euler", 7), lane_result),), (), True, 0.1), folder)


@pytest.mark.slow
def test_app_instances_and_a_cli_saving_at_once_never_overwrite(tmp_path, tiny_sd):
    """Three savers as the app's, one saving comparisons, and a real CLI run, into one folder."""
    import subprocess
    import sys

    savers, each, comparisons = 3, 100, 20
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_save_many, args=(str(tmp_path), w, each)) for w in range(savers)]
    processes.append(context.Process(target=_save_comparisons, args=(str(tmp_path), comparisons)))
    for process in processes:
        process.start()
    cli = subprocess.run([sys.executable, "-m", "diffusers_tui", "--model", str(tiny_sd), "--outputs", str(tmp_path),
                          "generate", "a cli image", "--steps", "2", "--seed", "77777"],
                         capture_output=True, text=True, timeout=300)
    for process in processes:
        process.join(300)
        assert process.exitcode == 0
    assert cli.returncode == 0, cli.stderr
    images = [p for p in tmp_path.glob("*/*.png")]
    assert len(images) == savers * each + 1
    seeds = {png_recipe.read_recipe(p)["request"]["seed"] for p in images}
    assert len(seeds) == savers * each + 1  # every image survived, none replaced another
    assert len(list(tmp_path.glob("*/*-compare-*/grid.png"))) == comparisons
    assert len(list(tmp_path.glob("*/*/step_0007.png"))) == savers * each // 5
    lines = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len({line["path"] for line in lines}) == savers * each + 1 + comparisons
    assert all((tmp_path / line["path"]).exists() for line in lines)
    assert not list(tmp_path.rglob(".saving-*"))


def test_an_unwritable_folder_or_a_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="could not save into .*file: ") as caught:
        outputs.save_result(_result(), blocker)
    assert caught.value.saved is None

    folder = tmp_path / "outputs"
    kept = outputs.save_result(_result(seed=1), folder)
    kept_bytes = kept.read_bytes()

    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        outputs.save_result(_result(seed=2), folder)
    monkeypatch.undo()
    files = {p.name for p in folder.rglob("*") if p.is_file()}
    assert files == {"index.jsonl", kept.name} and kept.read_bytes() == kept_bytes
    assert len((folder / "index.jsonl").read_text().splitlines()) == 1
    assert outputs.save_result(_result(seed=2), folder).name.startswith("00002-")  # space again: saves


def test_a_save_that_half_worked_says_what_was_saved(tmp_path, monkeypatch):
    from tests.frames import recorded_step

    real_mkdir = outputs.Path.mkdir

    def no_new_folders(self, *args, exist_ok=False, **kwargs):
        if exist_ok and self.is_dir():
            return real_mkdir(self, *args, exist_ok=exist_ok, **kwargs)
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    steps = [recorded_step(1, 1)]
    outputs.save_result(_result(seed=1), tmp_path)  # the day folder exists from here on
    monkeypatch.setattr(outputs.Path, "mkdir", no_new_folders)
    with pytest.raises(OutputError, match="saved .*00002.*, but only 0 of its 1 step snapshots .*quota") as caught:
        outputs.save_result(_result(seed=2), tmp_path, steps)
    assert caught.value.saved.exists()
    assert [json.loads(line)["seed"] for line in (tmp_path / "index.jsonl").read_text().splitlines()] == [1, 2]


# Any Unicode a person can type (no lone surrogates, which no file can hold; no NUL).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)
_NASTY = st.sampled_from(["../../etc/passwd", "/etc/passwd", "..", "~", "a/b\\c", "C:\\Windows", "x" * 5000,
                          "ünïcödé ☃ 🎨", "name\n\rwith\tcontrol", "%2e%2e/", "CON", " trailing "])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.one_of(_TEXT, _NASTY), scheduler=st.one_of(_TEXT, _NASTY), model=st.one_of(_TEXT, _NASTY))
def test_what_a_user_types_never_becomes_a_path_outside_outputs(tmp_path, prompt, scheduler, model):
    result = _result(prompt=prompt)
    result = GenerationResult(result.request, result.image, False, 1.0, 7, 7, None,
                              {**result.recipe, "scheduler_name": scheduler, "model": model})
    path = outputs.save_result(result, tmp_path)
    assert path.parent.parent == tmp_path and path.resolve().is_relative_to(tmp_path.resolve())
    assert re.fullmatch(r"\d{5}-[a-z0-9-]+-7-1\.png", path.name)
    recipe = png_recipe.read_recipe(path)  # and the text comes back exactly as typed
    assert (recipe["request"]["prompt"], recipe["scheduler_name"], recipe["model"]) == (prompt, scheduler, model)
    assert png_recipe.read_parameters(path).startswith(prompt)


def test_text_that_no_file_can_hold_is_refused_when_the_request_is_made():
    for bad in ("\udcff bytes from a non-UTF-8 terminal", "nul\x00byte"):
        with pytest.raises(RequestError, match="prompt: "):
            GenerationRequest(prompt=bad)


def test_rerunning_a_saved_recipe_gives_the_same_pixels(engine, tiny_sd, tmp_path):
    request = GenerationRequest(prompt="a green square", model=str(tiny_sd), scheduler="Euler a", steps=3, seed=9)
    path = outputs.save_result(engine.run(request), tmp_path)
    recipe = png_recipe.read_recipe(path)
    again = engine.run(GenerationRequest.from_dict(recipe["request"]))
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(again.image))

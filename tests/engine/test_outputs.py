"""Outputs: numbered names, recipes in PNG chunks, atomic never-overwrite, the index."""

import json
import multiprocessing

import numpy as np
import pytest
from PIL import Image

from diffusers_tui.engine import outputs
from diffusers_tui.engine.errors import OutputError
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
    parameters = outputs.read_parameters(path)
    assert parameters.startswith(prompt)
    assert "Steps: 7, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1, Size: 8x8" in parameters
    recipe = outputs.read_recipe(path)
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
    from diffusers_tui.engine.request import StepSnapshot

    snaps = [StepSnapshot(step=s, total=100, timestep=0.0, sigma=None, elapsed_s=0.0,
                          preview=Image.new("RGB", (4, 4))) for s in (50, 100)]
    path = outputs.save_result(_result(), tmp_path, snaps)
    assert sorted(p.name for p in path.with_suffix("").iterdir()) == ["step_0050.png", "step_0100.png"]


def _save_many(folder: str, worker: int, count: int) -> None:
    for i in range(count):
        outputs.save_result(_result(seed=worker * 1000 + i), folder)


def test_processes_saving_at_once_never_overwrite(tmp_path):
    workers, each = 4, 40
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_save_many, args=(str(tmp_path), w, each)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    files = list(tmp_path.rglob("*.png"))
    assert len(files) == workers * each
    seeds = {outputs.read_recipe(f)["request"]["seed"] for f in files}
    assert len(seeds) == workers * each  # every image survived, none replaced another
    lines = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert len(lines) == workers * each and len({line["path"] for line in lines}) == workers * each


def test_unwritable_folder_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="--outputs DIR"):
        outputs.save_result(_result(), blocker)


def test_rerunning_a_saved_recipe_gives_the_same_pixels(engine, tiny_sd, tmp_path):
    request = GenerationRequest(prompt="a green square", model=str(tiny_sd), scheduler="Euler a", steps=3, seed=9)
    path = outputs.save_result(engine.run(request), tmp_path)
    recipe = outputs.read_recipe(path)
    again = engine.run(GenerationRequest.from_dict(recipe["request"]))
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(again.image))

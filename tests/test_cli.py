"""The headless commands, run as a user runs them: files written, errors as one line, exit 2."""

import json
import os
import subprocess
import sys

import pytest

from diffusers_tui.commands import main
from diffusers_tui.engine.files import recipe as png_recipe


def _cli(*args, env_extra=None):
    env = {**os.environ, "DIFFUSERS_TUI_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "diffusers_tui", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_generate_writes_a_png_with_its_recipe(tiny_sd, tmp_path, capsys):
    code = main(["generate", "a blue square", "--model", str(tiny_sd), "--steps", "3", "--seed", "42",
                 "--scheduler", "DPM++ 2M Karras", "--guidance", "7.5", "--size", "16x16",
                 "--negative", "red", "--outputs", str(tmp_path)])
    assert code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("saved ") and "3 model calls" in line and "it/s" in line
    path = next(tmp_path.rglob("*.png"))
    assert path.name == "00001-dpmpp-2m-karras-3-42.png"
    recipe = png_recipe.read_recipe(path)
    assert recipe["request"]["negative_prompt"] == "red" and recipe["request"]["guidance"] == 7.5
    assert (recipe["scheduler_class"], recipe["scheduler_config"]["schedule"]) == ("SigmaSamplerScheduler", "Karras")


def test_unet_command_saves_snapshots_every_n_steps(tiny_ddpm, tmp_path):
    code = main(["unet", "--model", str(tiny_ddpm), "--steps", "10", "--save-every", "5", "--seed", "1",
                 "--outputs", str(tmp_path)])
    assert code == 0
    image = next(tmp_path.rglob("*.png"))
    run_folder = image.with_suffix("")
    assert sorted(p.name for p in run_folder.iterdir()) == ["step_0005.png", "step_0010.png"]
    index = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert index[0]["steps_folder"] == str(run_folder.relative_to(tmp_path))


@pytest.mark.parametrize("args, words", [
    (["generate", "--steps", "0"], "steps: 0 is outside 1 to 1000"),
    (["generate", "--guidance", "-3"], "guidance: -3.0 is outside 0 to 50"),
    (["generate", "--seed", str(2**64)], "seed:"),
    (["generate", "--size", "100x64"], "width: 100 is not a multiple of 8"),
    (["generate", "--scheduler", "Eulr"], "scheduler: unknown name 'Eulr'; did you mean Euler"),
    (["generate", "--device", "tpu"], "device: 'tpu' is not one of"),
    (["generate", "--model", "org/not-cached"], "hf download org/not-cached"),
    (["unet", "--model", "demo"], "mode: unet does not fit this model"),
    (["compare", "--schedulers", "Euler,Eulr"], "scheduler: unknown name 'Eulr'; did you mean Euler"),
    (["compare", "--schedulers", "Euler", "--steps", "10,x"], "'x' is not a step count"),
    (["compare", "--schedulers", "Euler", "--reference", "Euler"], "is not SCHEDULER:STEPS"),
    # Digits to str.isdigit() that int() refuses or reads otherwise.
    (["compare", "--schedulers", "Euler", "--steps", "\u00b2"], "'\u00b2' is not a step count"),
    (["compare", "--schedulers", "Euler", "--reference", "Euler:\u00b2"], "is not SCHEDULER:STEPS"),
    (["compare", "--schedulers", "Euler", "--steps", "\u0663"], "is not a step count"),
    (["compare", "--schedulers", "Euler,Heun", "--steps", "3,4", "--equal-calls"],
     "Heun at 3 and 4 steps both run 2 steps"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, words, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_diffusers_sde_class_runs_without_torchsdes_warnings_on_stderr(tiny_sd, tmp_path):
    done = _cli("generate", "a blue square", "--model", str(tiny_sd), "--scheduler", "DPM++ SDE (diffusers)",
                "--steps", "3", "--size", "16x16", "--outputs", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Should have" not in done.stderr and "Warning" not in done.stderr


def test_missing_model_in_a_real_process_has_no_traceback(tmp_path):
    done = _cli("generate", "--model", "google/ddpm-cat-256", env_extra={"HF_HUB_CACHE": str(tmp_path)})
    assert done.returncode == 2
    assert "hf download google/ddpm-cat-256" in done.stderr and "Traceback" not in done.stderr


def test_models_and_schedulers_print_tables(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "demo " in listing and "demo-ddpm" in listing and "text-to-image" in listing
    assert main(["schedulers", "--model", "demo"]) == 0
    table = capsys.readouterr().out
    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "Automatic (Karras), A1111's" in rows["DPM++ 2M"] and rows["DPM++ 2M"].split()[2] == "A1111"
    assert "Automatic (Exponential)" in rows["DPM++ 2M SDE"]
    assert rows["dpmpp_sde"].split()[1:4] == ["ComfyUI", "2", "yes"]  # tool, model calls a step, stochastic
    assert "adaptive" in rows["DPM adaptive"]
    assert len([line for line in table.splitlines() if line.endswith("yes")]) == 81  # every entry runs on the demo
    assert table.splitlines()[3].startswith("model default ") and "DPMSolverMultistepScheduler" in table.splitlines()[3]
    assert "A1111's schedule types: Uniform, Karras" in table and "Align Your Steps" in table and "kl_optimal" in table
    # Where diffusers' own classes cannot run what A1111 runs, the table says so, with the difference measured.
    assert "DPM2 (diffusers): A1111 drops the next-to-last σ" in table and "RMSE" in table


def test_every_command_documents_its_options():
    for command, option in (("generate", "--scheduler"), ("unet", "--save-every"), ("models", "--models-dir"),
                            ("schedulers", "--model"), ("compare", "--equal-calls")):
        done = _cli(command, "--help")
        assert done.returncode == 0 and option in done.stdout


def test_console_script_entry_point_is_declared():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["diffusers-tui"] == "diffusers_tui.commands:main"


@pytest.mark.slow
def test_hf_home_is_respected_for_listing_and_loading(tmp_path, tiny_sd):
    import shutil

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hf-home" / "hub" / "models--someone--tiny-sd"
    shutil.copytree(tiny_sd, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {"HF_HOME": str(tmp_path / "hf-home")}
    env_clean = {k: v for k, v in os.environ.items() if k != "HF_HUB_CACHE"}
    listing = subprocess.run([sys.executable, "-m", "diffusers_tui", "models"], capture_output=True, text=True,
                             env={**env_clean, **env}, timeout=300)
    assert "someone/tiny-sd" in listing.stdout
    done = subprocess.run([sys.executable, "-m", "diffusers_tui", "generate", "--model", "someone/tiny-sd",
                           "--steps", "2", "--outputs", str(tmp_path / "out")], capture_output=True, text=True,
                          env={**env_clean, **env, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    recipe = png_recipe.read_recipe(next((tmp_path / "out").rglob("*.png")))
    assert recipe["model_repo_id"] == "someone/tiny-sd" and recipe["model_revision"] == commit


def _compare_args(model, outputs_dir):
    return ["compare", "a red square", "--model", str(model), "--schedulers", "Euler,DPM++ 2M Karras,UniPC",
            "--steps", "2,3", "--seed", "7", "--reference", "DPM++ 2M:8", "--outputs", str(outputs_dir)]


def test_compare_prints_the_table_and_saves_the_grid(tiny_sd, tmp_path, capsys):
    assert main(_compare_args(tiny_sd, tmp_path)) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("Euler", "DPM++", "UniPC"))]
    assert len(rows) == 6 and all(row[-1].replace(".", "").isdigit() for row in rows)  # rmse filled in
    assert "RMSE to reference" in out and "batched" in out
    folder = next(tmp_path.glob("*/*-compare-7"))
    assert (folder / "grid.png").exists() and len(list(folder.glob("0*.png"))) == 7  # 6 runs + reference


@pytest.mark.slow
@pytest.mark.parametrize("study, runs", [([], 6), (["--x", "guidance=2,6", "--seeds", "2"], 24)])
def test_compare_under_accelerate_splits_runs_across_two_processes(tiny_sd, tmp_path, study, runs):
    """`accelerate launch` with 2 CPU processes: one table and one grid, equal to one process's; a study's
    too (another axis, many seeds, a reference per guidance and seed)."""
    single = tmp_path / "single"
    assert main([*_compare_args(tiny_sd, single), *study]) == 0
    env = {**os.environ, "DIFFUSERS_TUI_THREADS": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # --multi_gpu makes accelerate start one process per rank (torchrun); without GPUs they use gloo.
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "diffusers_tui", *_compare_args(tiny_sd, tmp_path / "split"), *study],
        capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"2 processes shared the {runs} runs" in done.stderr
    assert done.stdout.count("saved ") == 1  # only the main process reports and saves
    split_table = json.loads(next((tmp_path / "split").glob("*/*/table.json")).read_text())
    single_table = json.loads(next(single.glob("*/*/table.json")).read_text())
    assert [(r["scheduler"], r["steps"], r["model_calls"]) for r in split_table["runs"]] == \
        [(r["scheduler"], r["steps"], r["model_calls"]) for r in single_table["runs"]]
    # The figures are measured from floats that differ with how lanes were batched: near, not equal.
    measured = {"rmse_to_reference": 0.5, "latent_l2_to_reference": 0.5, "ssim_to_reference": 0.01}
    for split_row, single_row in zip(split_table["runs"], single_table["runs"]):
        for key, tolerance in measured.items():
            assert split_row[key] == pytest.approx(single_row[key], abs=tolerance)
        assert split_row["latent_l2_to_reference"] is not None  # the latents crossed to the main process
        assert {key: value for key, value in split_row.items() if key not in ("seconds", *measured)} == \
            {key: value for key, value in single_row.items() if key not in ("seconds", *measured)}
    assert split_table.get("references") == single_table.get("references")
    # (The order can differ where two means are within float noise of each other: compared as sets.)
    assert {row["lane"] for row in split_table.get("ranking", [])} == \
        {row["lane"] for row in single_table.get("ranking", [])}
    assert len(split_table.get("ranking", [])) == (12 if study else 0)  # 3 samplers x 2 step counts x 2 guidances


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="limits the address space with setrlimit")
def test_a_size_too_large_for_memory_is_one_line_and_exit_1(tmp_path):
    """Under a 2.5 GB address-space limit a 64 px image works and a 4096 px one cannot be allocated."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2500 * 2**20, 2500 * 2**20))

    env = {**os.environ, "DIFFUSERS_TUI_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    common = [sys.executable, "-m", "diffusers_tui", "--outputs", str(tmp_path), "generate", "a circle", "--steps", "2"]
    small = subprocess.run(common, capture_output=True, text=True, env=env, timeout=300, preexec_fn=limit)
    assert small.returncode == 0, small.stderr
    large = subprocess.run([*common, "--size", "4096"], capture_output=True, text=True, env=env, timeout=300,
                           preexec_fn=limit)
    assert large.returncode == 1 and "Traceback" not in large.stderr
    assert "out of memory" in large.stderr and "smaller size" in large.stderr
    assert len(list(tmp_path.rglob("*.png"))) == 1


def test_an_unwritable_outputs_folder_rescues_the_image_and_says_where(tiny_sd, tmp_path, monkeypatch, capsys):
    from diffusers_tui.commands import common

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setattr(common, "RESCUE_DIR", tmp_path / "rescue")
    code = main(["--outputs", str(blocker), "generate", "a square", "--model", str(tiny_sd), "--steps", "2"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    rescued = list((tmp_path / "rescue").rglob("*.png"))
    assert code == 1 and len(rescued) == 1 and blocker.read_text() == "x"
    assert f"could not save into {blocker}" in error and f"Saved it as {rescued[0]} instead" in error


def test_options_before_the_command_are_kept(tiny_sd, tmp_path):
    assert main(["--model", str(tiny_sd), "--outputs", str(tmp_path), "--device", "cpu",
                 "generate", "a square", "--steps", "2"]) == 0
    saved = list(tmp_path.rglob("*.png"))
    assert len(saved) == 1 and png_recipe.read_recipe(saved[0])["model_path"] == str(tiny_sd)


def test_a_run_that_goes_nan_exits_1_and_saves_nothing(tiny_ddpm, tmp_path, monkeypatch, capsys):
    import torch
    from diffusers import UNet2DModel

    original = UNet2DModel.forward

    def poisoned(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        return type(output)(sample=torch.full_like(output.sample, float("nan")))

    monkeypatch.setattr(UNet2DModel, "forward", poisoned)
    code = main(["unet", "--model", str(tiny_ddpm), "--steps", "3", "--outputs", str(tmp_path)])
    assert code == 1 and "NaN or infinite" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.png"))


def test_generate_from_a_saved_png_makes_the_same_image_and_options_override_it(tiny_sd, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    assert main(["generate", "a green square", "--model", str(tiny_sd), "--steps", "3", "--seed", "11",
                 "--scheduler", "Euler a", "--size", "16x16", "--outputs", str(tmp_path / "a")]) == 0
    first = next((tmp_path / "a").rglob("*.png"))
    assert main(["generate", "--from", str(first), "--outputs", str(tmp_path / "b")]) == 0
    again = next((tmp_path / "b").rglob("*.png"))
    assert again.name == first.name and np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))
    assert main(["generate", "--from", str(first), "--steps", "2", "--outputs", str(tmp_path / "c")]) == 0
    changed = png_recipe.read_recipe(next((tmp_path / "c").rglob("*.png")))["request"]
    assert (changed["steps"], changed["seed"], changed["scheduler"], changed["prompt"]) == (2, 11, "Euler a",
                                                                                             "a green square")


def test_generate_from_an_a1111_png_says_what_it_could_not_map(tiny_sd, tmp_path, capsys):
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a castle\nNegative prompt: fog\nSteps: 2, Sampler: Euler a, CFG scale: 4, "
                                "Seed: 77, Size: 16x16, Model: sd15, Clip skip: 2")
    png = tmp_path / "from-a1111.png"
    Image.new("RGB", (16, 16)).save(png, pnginfo=info)
    code = main(["generate", "--from", str(png), "--model", str(tiny_sd), "--outputs", str(tmp_path / "out")])
    errors = capsys.readouterr().err
    assert code == 0 and "'sd15' is A1111's name" in errors and "not used: Clip skip" in errors
    request = png_recipe.read_recipe(next((tmp_path / "out").rglob("*.png")))["request"]
    assert (request["prompt"], request["negative_prompt"], request["scheduler"], request["seed"], request["steps"],
            request["guidance"]) == ("a castle", "fog", "Euler a", 77, 2, 4.0)
    assert main(["generate", "--from", str(tmp_path / "missing.png")]) == 2


def test_unet_export_writes_the_denoising_next_to_the_image(tiny_ddpm, tmp_path, capsys):
    from PIL import Image

    code = main(["unet", "--model", str(tiny_ddpm), "--steps", "6", "--export", "--outputs", str(tmp_path)])
    assert code == 0 and "exported 7 frames" in capsys.readouterr().out
    image = next(tmp_path.glob("*/*.png"))
    with Image.open(image.with_suffix("") / "denoising.webp") as animation:
        assert animation.n_frames == 7  # six previews and the final image
    assert (image.with_suffix("") / "contact-sheet.png").exists()
    assert not list(image.with_suffix("").glob("step_*.png"))  # --export alone keeps no step PNGs


def test_the_demo_names_the_words_it_does_not_know(tmp_path, capsys):
    code = main(["generate", "a yellow triangle on a black background", "--steps", "2", "--seed", "1",
                 "--outputs", str(tmp_path)])
    assert code == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "does not know" in line]
    assert len(notes) == 1 and "'black'" in notes[0] and "'yellow'" not in notes[0]
    assert "colours red, green, blue, yellow, purple, white" in notes[0] and "circle, square, triangle" in notes[0]
    assert "'a <colour> <shape> on a <colour> background'" in notes[0]


def test_save_every_writes_full_size_decodes_whatever_the_live_preview_method(tmp_path):
    from PIL import Image

    code = main(["generate", "a red circle on a blue background", "--steps", "6", "--save-every", "3",
                 "--seed", "2", "--preview-method", "latent", "--outputs", str(tmp_path)])
    assert code == 0
    image = next(p for p in tmp_path.rglob("*.png") if p.parent.name != p.stem and "step_" not in p.name)
    steps = sorted(image.with_suffix("").iterdir())
    assert [p.name for p in steps] == ["step_0003.png", "step_0006.png"]
    with Image.open(steps[0]) as snapshot:
        assert snapshot.size == (64, 64)  # the demo's full size, not its 16x16 latent

"""The recipe's snippet runs as written: every kind of sampler, both modes, in a fresh interpreter.

Each run is saved as a user's would be; the snippet is read back out of the PNG and run by
itself, in its own folder and namespace: a diffusers class's with diffusers_tui unimportable, an
engine sampler's importing only the stand-in scheduler. On the CPU it must save exactly the pixels
the PNG holds. The snippets of one kind share an interpreter, one after another (a fresh one each
spent most of the test importing torch and diffusers); each still starts from empty globals, so a
snippet that leaned on another's names fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusers_tui.engine import GenerationRequest
from diffusers_tui.engine.files.recipe import RECIPE_KEY

#: Runs each folder's snippet.py in that folder, with fresh globals; argv: "alone" (diffusers_tui made
#: unimportable: a diffusers class's snippet needs torch and diffusers only) or "engine", then the folders.
#: A snippet that raises leaves its traceback in failed.txt, and the next one runs.
RUNNER = """
import os, sys, traceback
if sys.argv[1] == "alone":
    sys.modules["diffusers_tui"] = None
for folder in sys.argv[2:]:
    os.chdir(folder)
    try:
        exec(compile(open("snippet.py").read(), "snippet.py", "exec"), {"__name__": "__main__"})
    except BaseException:
        open("failed.txt", "w").write(traceback.format_exc())
"""
#: An engine sampler's snippet may import one thing of this package: the stand-in scheduler, from its public module.
ENGINE_IMPORT = "from diffusers_tui.engine import SigmaSamplerScheduler"
#: The samplers whose snippets the slow test runs: every diffusers class, and each kind of engine sampler
#: under each noise convention (ancestral, Brownian, several calls a step, adaptive, CFG++, multistep).
ENGINE_SAMPLE = {"Euler a", "DPM++ 2M SDE", "DPM adaptive", "Restart", "dpmpp_2m_sde_gpu", "euler_cfg_pp", "uni_pc"}
#: The bare UNet's share (no guidance, so no CFG++): one of each noise kind, and of diffusers' classes the
#: model's own and two (the text-to-image run above takes every class through the same snippet code).
UNET_ENGINE_SAMPLE = {"Euler a", "DPM++ 2M SDE", "DPM adaptive"}
UNET_DIFFUSERS_SAMPLE = {"model default", "DDIM (diffusers)", "DDPM"}


def _saved_snippets(engine, model: str, mode: str, outputs: Path) -> dict[str, Path]:
    """Run every sampler available for `model`, save each run, and return its PNG by sampler name."""
    sample = ENGINE_SAMPLE if mode == "text-to-image" else UNET_ENGINE_SAMPLE
    available = [s.entry.name for s in engine.scheduler_statuses(model) if s.available
                 and (s.entry.name in sample if s.entry.is_engine else
                      mode == "text-to-image" or s.entry.name in UNET_DIFFUSERS_SAMPLE)]
    saved = {}
    for name in available:
        request = GenerationRequest(prompt="a blue square" if mode == "text-to-image" else "", model=model, mode=mode,
                                    scheduler=name, steps=3, seed=5, guidance=7.0 if mode == "text-to-image" else 0.0,
                                    preview_method="none")
        saved[name] = engine.save(engine.run(request), outputs)
    for noise in ("A1111 NV", "ComfyUI") if mode == "text-to-image" else ("A1111 NV",):  # drawn as the run drew it
        request = GenerationRequest(prompt="a blue square" if mode == "text-to-image" else "", model=model, mode=mode,
                                    scheduler="Euler a", steps=3, seed=5, noise=noise, preview_method="none",
                                    guidance=7.0 if mode == "text-to-image" else 0.0)
        saved[f"Euler a, {noise}"] = engine.save(engine.run(request), outputs)
    # A1111's variation seed and seed resize: written out for CPU noise (a diffusers class's, an engine sampler's),
    # through the stand-in for the engine's NV noise; the ancestral noise continues from the seed's generator.
    for name, noise, resize in (("Euler a", "A1111 CPU", None), ("DPM++ 2M (diffusers)", "auto", (24, 40)),
                                ("Euler a", "A1111 NV", (40, 24))):
        if name not in available and not (mode == "unet" and name == "Euler a"):
            continue
        request = GenerationRequest(prompt="a blue square" if mode == "text-to-image" else "", model=model, mode=mode,
                                    scheduler=name, steps=3, seed=5, noise=noise, variation_seed=9,
                                    variation_strength=0.4, seed_resize_from=resize, preview_method="none",
                                    guidance=7.0 if mode == "text-to-image" else 0.0)
        saved[f"{name}, {noise}, variation {resize}"] = engine.save(engine.run(request), outputs)
    if mode == "text-to-image":  # a sampler option (the stand-in's config carries it)
        request = GenerationRequest(prompt="a blue square", model=model, scheduler="dpmpp_sde", steps=3, seed=5,
                                    guidance=7.0, preview_method="none", sampler_options=(("r", 0.3),))
        saved["dpmpp_sde, r 0.3"] = engine.save(engine.run(request), outputs)
    if mode == "text-to-image":  # A1111 emphasis and BREAK: the snippet builds the embeddings with compel too
        request = GenerationRequest(prompt="a (blue:1.3) square BREAK [red]", model=model, scheduler="Euler a",
                                    steps=3, seed=6, guidance=7.0, preview_method="none")
        saved["Euler a, weighted prompt"] = engine.save(engine.run(request), outputs)
    return saved


def _run_snippets(saved: dict[str, Path], runs: Path) -> dict[str, Path]:
    """Write each PNG's snippet into a folder of its own under `runs` and run them, the diffusers classes' and
    the engine samplers' each in one interpreter, the two side by side. Returns each run's folder by name."""
    folders, kinds = {}, {"alone": [], "engine": []}
    for index, (name, png) in enumerate(saved.items()):
        folders[name] = runs / f"{index:02d}"
        folders[name].mkdir(parents=True)
        with Image.open(png) as image:
            snippet = json.loads(image.text[RECIPE_KEY])["reproduce"]
        (folders[name] / "snippet.py").write_text(snippet)
        project_imports = [line for line in snippet.splitlines()
                           if line.startswith(("from diffusers_tui", "import diffusers_tui"))]
        assert project_imports in ([], [ENGINE_IMPORT]), (name, project_imports)
        kinds["engine" if project_imports else "alone"].append(str(folders[name]))

    def run(kind: str) -> None:
        if kinds[kind]:
            done = subprocess.run([sys.executable, "-c", RUNNER, kind, *kinds[kind]], capture_output=True, text=True,
                                  timeout=600, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                                                    "OMP_NUM_THREADS": "1"})
            assert done.returncode == 0, done.stderr[-3000:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, kinds))
    return folders


def _assert_same_pixels(saved: dict[str, Path], folders: dict[str, Path]) -> None:
    for name, png in saved.items():
        failed = folders[name] / "failed.txt"
        assert not failed.exists(), f"{name}: the snippet failed:\n{failed.read_text()[-3000:]}"
        with Image.open(png) as ours, Image.open(folders[name] / "reproduced.png") as theirs:
            assert np.array_equal(np.asarray(ours.convert("RGB")), np.asarray(theirs.convert("RGB"))), name


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["text-to-image", "unet"])
def test_every_samplers_snippet_runs_as_written_and_saves_the_same_pixels(engine, tiny_sd, tiny_ddpm, tmp_path, mode):
    model = str(tiny_sd if mode == "text-to-image" else tiny_ddpm)
    saved = _saved_snippets(engine, model, mode, tmp_path / "out")
    assert len(saved) >= (12 if mode == "text-to-image" else 7), sorted(saved)
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))


def test_every_snippet_is_python_with_the_runs_dtype_and_device(engine, tiny_sd, tmp_path):
    request = GenerationRequest(prompt="a blue square", model=str(tiny_sd), scheduler="DPM++ 2M (diffusers)", steps=2,
                                seed=3)
    png = engine.save(engine.run(request), tmp_path)
    with Image.open(png) as image:
        snippet = json.loads(image.text[RECIPE_KEY])["reproduce"]
    compile(snippet, "snippet.py", "exec")  # the config's -inf went in as JSON, not as repr
    assert "-inf" not in snippet and "dtype=torch.float32" in snippet and ".to('cpu')" in snippet
    assert "image.save('reproduced.png')" in snippet and "diffusers_tui" not in snippet


@pytest.mark.slow
def test_transformer_pipelines_snippets_run_as_written_and_save_the_same_pixels(engine, tmp_path):
    from tests import tiny_transformers as tiny

    saved = {}
    builders = (tiny.build_tiny_sd3, tiny.build_tiny_flux, tiny.build_tiny_flux2_klein, tiny.build_tiny_qwen_image,
                tiny.build_tiny_pixart_sigma, tiny.build_tiny_sana, tiny.build_tiny_chroma)
    for build in builders:
        model = str(build(tmp_path / "models" / build.__name__))
        width, height = (128, 96) if build is tiny.build_tiny_sana else (32, 24)  # Sana's pipeline asks for 32s
        # Each family's own guidance argument, negative prompt and switches (true_cfg_scale, resolution binning...).
        # UniPC (diffusers' flow class, or the engine's) on two families: the others differ in their arguments.
        for scheduler in (None, "UniPC") if build in (tiny.build_tiny_sd3, tiny.build_tiny_flux) else (None,):
            request = GenerationRequest(prompt="a red circle", negative_prompt="blue", model=model, scheduler=scheduler,
                                        steps=3, seed=8, width=width, height=height, guidance=3.0,
                                        preview_method="none")
            saved[f"{build.__name__} {scheduler}"] = engine.save(engine.run(request), tmp_path / "out")
    # The trained flow demo (an SD3 folder saved without T5), on its own sampler and stochastic ones,
    # whose step noise the snippet hands over from the run's generator as the run did.
    for scheduler in (None, "DPM++ 2M SDE", "LCM (diffusers)", "lcm"):
        request = GenerationRequest(prompt="a red circle on a blue background", model="demo-flow", scheduler=scheduler,
                                    steps=6, seed=8, preview_method="none")
        saved[f"demo-flow {scheduler}"] = engine.save(engine.run(request), tmp_path / "out")
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))

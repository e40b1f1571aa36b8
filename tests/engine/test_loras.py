"""LoRA files: made here with peft on the tiny pipeline, saved in diffusers' and kohya's (A1111's) key layouts,
found by path or by name in the LoRA folders, weighted per run, and off again for a run without them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from diffusers_tui.engine import Engine
from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.models.loading import LoadOptions
from diffusers_tui.engine.models.loras import parse_lora
from diffusers_tui.engine.request import GenerationRequest
from tests.tiny_loras import make_lora as _make_lora


@pytest.fixture(scope="module")
def loras(tiny_sd, tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    return {"folder": folder, "one": _make_lora(tiny_sd, folder, 1), "two": _make_lora(tiny_sd, folder, 2),
            "kohya": _make_lora(tiny_sd, folder, 1, kohya=True)}


def _pixels(result):
    return np.asarray(result.image.convert("RGB"), dtype=np.int16)


def test_weights_change_the_picture_zero_is_none_two_combine_and_a_plain_run_after_is_the_plain_model(tiny_sd, loras):
    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))

    def run(*pairs):
        return engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4,
                                            preview_method="none", loras=pairs))

    plain = _pixels(run())
    one = run((str(loras["one"]), 1.0))
    assert np.abs(_pixels(one) - plain).max() > 10
    assert [(record["weight"], len(record["sha256"])) for record in one.recipe["loras"]] == [(1.0, 64)]
    assert np.array_equal(_pixels(run(("diffusers-1", 0.0))), plain)  # by name, in the folder: weight 0
    both = _pixels(run(("diffusers-1", 1.0), ("diffusers-2", 1.0)))
    assert np.abs(both - _pixels(one)).max() > 10 and np.abs(both - _pixels(run(("diffusers-2", 1.0)))).max() > 10
    # kohya's layout (A1111's files) is the same LoRA: the same picture, within float noise.
    assert np.abs(_pixels(run(("kohya-1", 1.0))) - _pixels(one)).max() <= 2
    assert np.array_equal(_pixels(run()), plain)  # the adapters stay loaded, and off


def test_a_missing_name_says_where_it_looked_and_a_bad_weight_is_refused(tiny_sd, loras):
    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))
    with pytest.raises(RequestError, match=f"'absent' is not a LoRA file, nor a name in: {loras['folder']}"):
        engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), steps=2, loras=(("absent", 1.0),)))
    assert parse_lora("detail:0.7") == ("detail", 0.7) and parse_lora("detail") == ("detail", 1.0)
    assert parse_lora("/loras/a:b.safetensors") == ("/loras/a:b.safetensors", 1.0)
    with pytest.raises(RequestError, match="is outside -10 to 10"):
        parse_lora("detail:nan")
    with pytest.raises(RequestError, match="is not a weight"):
        parse_lora("detail:lots")


@pytest.mark.slow
def test_a_png_saved_with_a_lora_reruns_to_the_same_pixels_from_its_recipe_and_its_snippet(tiny_sd, loras, tmp_path):
    from PIL import Image

    from diffusers_tui.engine import build_request
    from tests.engine.test_reproduce_snippets import _assert_same_pixels, _run_snippets

    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))
    request = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4, preview_method="none",
                                scheduler="DPM++ 2M (diffusers)", loras=(("diffusers-1", 0.8), ("kohya-1", 0.3)))
    png = engine.save(engine.run(request), tmp_path / "out")
    plain = _pixels(engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4,
                                                 preview_method="none", scheduler="DPM++ 2M (diffusers)")))
    again = engine.run(build_request(recipe=engine.read_recipe(png), given={"preview_method": "none"}))
    with Image.open(png) as saved:
        pixels = np.asarray(saved.convert("RGB"), dtype=np.int16)
    assert np.array_equal(_pixels(again), pixels) and np.abs(pixels - plain).max() > 10
    _assert_same_pixels({"lora": png}, _run_snippets({"lora": png}, tmp_path / "snippet"))


def test_a1111s_prompt_tags_load_their_loras_by_name_and_leave_the_text(tiny_sd, loras):
    """<lora:name:weight> in the prompt loads the file the name finds, as --lora does; the tag is not text."""
    from diffusers_tui.engine.models.loras import prompt_tags

    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))

    def run(prompt, *pairs):
        return engine.run(GenerationRequest(prompt=prompt, model=str(tiny_sd), seed=3, steps=4,
                                            preview_method="none", loras=pairs))

    tagged = run("a red square <lora:diffusers-1:0.6>")
    assert np.array_equal(_pixels(tagged), _pixels(run("a red square", ("diffusers-1", 0.6))))
    assert [record["weight"] for record in tagged.recipe["loras"]] == [0.6]
    assert np.abs(_pixels(tagged) - _pixels(run("a red square"))).max() > 10
    # Named twice, a LoRA's weights add up (as A1111's do).
    assert run("a red square <lora:diffusers-1:0.2>", ("diffusers-1", 0.4)).recipe["loras"][0]["weight"] == pytest.approx(0.6)
    assert prompt_tags("<lora:a> x <LORA:b:0.5:0.2> <lyco:c:2>") == [("a", 1.0), ("b", 0.5), ("c", 2.0)]
    with pytest.raises(RequestError, match="is not a LoRA weight"):
        prompt_tags("<lora:a:strong>")
    with pytest.raises(RequestError, match="'missing' is not a LoRA file"):
        run("a red square <lora:missing:1>")


def test_an_a1111_png_re_runs_with_the_loras_found_here_and_names_the_rest(tiny_sd, loras, tmp_path):
    from PIL import Image, PngImagePlugin

    from diffusers_tui.engine import build_request

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red square <lora:diffusers-1:0.5> <lora:gone:1>\n"
                                "Steps: 4, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 16x16")
    png = tmp_path / "a1111.png"
    Image.new("RGB", (16, 16)).save(png, pnginfo=info)
    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))
    recipe = engine.read_recipe(png)
    assert recipe.fields["prompt"] == "a red square <lora:diffusers-1:0.5>"
    assert any("LoRA <lora:gone:1> not found" in note and str(loras["folder"]) in note for note in recipe.notes)
    rerun = engine.run(build_request(recipe=recipe, given={"model": str(tiny_sd), "preview_method": "none"}))
    alike = engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4, scheduler="Euler",
                                         width=16, height=16, preview_method="none", loras=(("diffusers-1", 0.5),)))
    assert np.array_equal(_pixels(rerun), _pixels(alike))


def test_our_infotext_tags_the_loras_and_their_a1111_hashes_which_find_a_renamed_file(tiny_sd, loras, tmp_path):
    """A1111's Lora hashes are kohya's (the SHA-256 of a .safetensors file after its header), 12 characters; a
    PNG read back finds its LoRA by that hash first, whatever the file is called here."""
    import hashlib
    import shutil

    from PIL import Image

    from diffusers_tui.engine import build_request
    from diffusers_tui.engine.files.reading import recipe_from_png

    data = loras["one"].read_bytes()
    kohya_hash = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]
    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))
    request = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=4, preview_method="none",
                                loras=((str(loras["one"]), 0.7),))
    png = engine.save(engine.run(request), tmp_path / "out")
    with Image.open(png) as image:
        line = image.text["parameters"]
    assert line.startswith("a red square <lora:diffusers-1:0.7>\n")
    assert f'Lora hashes: "diffusers-1: {kohya_hash}"' in line
    assert recipe_from_png(png).source == "diffusers-tui"  # our own PNGs re-run from their JSON recipe
    renamed_folder = tmp_path / "elsewhere"
    renamed_folder.mkdir()
    shutil.copy(loras["one"], renamed_folder / "style-v2.safetensors")
    a1111 = tmp_path / "a1111.png"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", line)
    Image.new("RGB", (16, 16)).save(a1111, pnginfo=info)
    elsewhere = Engine(LoadOptions(lora_dirs=(str(renamed_folder),)))
    recipe = elsewhere.read_recipe(a1111)
    assert recipe.fields["prompt"] == "a red square <lora:style-v2:0.7>"
    assert any("found by its hash" in note for note in recipe.notes)
    rerun = elsewhere.run(build_request(recipe=recipe, given={"model": str(tiny_sd), "preview_method": "none"}))
    with Image.open(png) as saved:
        assert np.abs(_pixels(rerun) - np.asarray(saved.convert("RGB"), dtype=np.int16)).max() <= 2


def test_a_pickle_lora_loads_only_with_allow_pickle(tiny_sd, loras, tmp_path):
    """Weights load from safetensors only unless --allow-pickle (a .pt or .ckpt file can run code)."""
    import shutil

    pickled = tmp_path / "old-style.ckpt"
    shutil.copy(loras["one"], pickled)  # the suffix is what decides: nothing of it is read
    request = GenerationRequest(prompt="a red square", model=str(tiny_sd), steps=2, loras=((str(pickled), 1.0),))
    with pytest.raises(RequestError, match=r"old-style.ckpt is a pickle file \(.ckpt\), which can run code"):
        Engine().run(request)


def test_other_tools_pngs_load_their_loras_by_their_names_and_hashes(tiny_sd, loras, tmp_path):
    """ComfyUI's LoraLoader nodes (a path under its loras folder, Windows' backslashes too), Fooocus's list (found
    by its 10-character file hash under another name) and InvokeAI's run the same files at the same weights as
    --lora does; a name not found here is a note, and the rest runs."""
    import hashlib
    import json
    import shutil

    from tests import other_tools

    nested = tmp_path / "loras" / "styles"
    nested.mkdir(parents=True)
    shutil.copy(loras["one"], nested / "one-style.safetensors")  # A1111 and ComfyUI look in subfolders too
    shutil.copy(loras["two"], tmp_path / "loras" / "two-here.safetensors")
    engine = Engine(LoadOptions(lora_dirs=(str(tmp_path / "loras"),)))

    def run(fields):  # the PNG's recipe, on the tiny model, small and short
        return _pixels(engine.run(GenerationRequest(**{**fields, "model": str(tiny_sd), "preview_method": "none",
                                                       "steps": 4, "width": 32, "height": 32})))

    plain = engine.read_recipe(other_tools.comfyui(tmp_path / "plain.png")).fields
    expected = run({**plain, "loras": ((str(loras["one"]), 0.7),)})
    assert np.abs(expected - run(plain)).max() > 10
    for name in ("styles/one-style.safetensors", "styles\\one-style.safetensors", "one-style"):
        png = other_tools.comfyui(tmp_path / "comfy.png", lora=(name, 0.7))
        recipe = engine.read_recipe(png)
        assert recipe.fields["loras"] == [[name, 0.7]], recipe.fields
        assert np.array_equal(run(recipe.fields), expected), name

    digest = hashlib.sha256(loras["two"].read_bytes()).hexdigest()[:10]
    fooocus = other_tools.fooocus(tmp_path / "fooocus.png", loras=[["renamed-two", 0.5, digest], ["gone", 1.0, "0" * 10]])
    recipe = engine.read_recipe(fooocus)
    # The folder has it as another name: found by hash.
    assert recipe.fields["loras"] == [[str(tmp_path / "loras" / "two-here.safetensors"), 0.5]]
    notes = " ".join(recipe.notes)
    assert "'renamed-two' found by its hash" in notes and "gone not found" in notes
    invoke = other_tools.invokeai(tmp_path / "invoke.png", loras=[{"model": {"name": "one-style", "key": "k"},
                                                                    "weight": 0.25}])
    assert engine.read_recipe(invoke).fields["loras"] == [["one-style", 0.25]]
    json.loads(json.dumps(recipe.fields))  # what a recipe carries stays plain data


def test_a_lora_weight_axis_runs_each_weight_as_its_own_run_would_and_lanes_of_one_weight_share_calls(tiny_sd, loras):
    """lora=0,0.5,1 weights the run's one LoRA per lane (0 is the plain model); lanes of one weight race
    together (two samplers here), each weight after the other, and each lane's recipe has its weight."""
    from diffusers_tui.engine import build_comparison

    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))
    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=3, preview_method="none",
                             loras=(("diffusers-1", 0.8),))
    study = build_comparison(base, ["Euler", "DPM++ 2M"], "3", axes={"x": "lora=0,0.5,1"})
    assert study.axes[0].title == "LoRA diffusers-1" and len(study.lanes) == 6
    result = engine.compare(study)
    assert result.batched and not result.cancelled
    by_place = {(lane.lane.scheduler, lane.lane.at[0]): lane.result for lane in result.lanes}
    for at, weight in enumerate((0.0, 0.5, 1.0)):
        for sampler in ("Euler", "DPM++ 2M"):
            alone = engine.run(replace(base, scheduler=sampler, loras=(("diffusers-1", weight),)))
            lane = by_place[sampler, at]
            assert np.abs(_pixels(lane) - _pixels(alone)).max() <= 1, (sampler, weight)
            assert [record["weight"] for record in lane.recipe["loras"]] == [weight]
    plain = engine.run(replace(base, scheduler="Euler", loras=()))
    assert np.abs(_pixels(by_place["Euler", 0]) - _pixels(plain)).max() <= 1
    assert np.abs(_pixels(by_place["Euler", 2]) - _pixels(plain)).max() > 10


def test_a_lora_axis_names_its_lora_where_the_run_has_none_or_several_and_retags_a_prompt_tag(tiny_sd, loras):
    from diffusers_tui.engine import build_comparison
    from diffusers_tui.engine.axes import parse_axis

    base = GenerationRequest(prompt="a red square", model=str(tiny_sd), steps=3)
    with pytest.raises(RequestError, match="it has none: name it, as lora:NAME=0,0.5,1"):
        build_comparison(base, ["Euler"], "3", axes={"x": "lora=0,1"})
    with pytest.raises(RequestError, match="only a LoRA axis and a sampler option's name what they vary"):
        parse_axis("guidance:x=1,2")
    assert parse_axis("lora:detail=0,0.5").spec() == "lora:detail=0,0.5"
    tagged = replace(base, prompt="a red square <lora:diffusers-1:0.8>", loras=(("diffusers-2", 1.0),))
    with pytest.raises(RequestError, match="it has diffusers-2, diffusers-1"):
        build_comparison(tagged, ["Euler"], "3", axes={"x": "lora=0,1"})
    study = build_comparison(tagged, ["Euler"], "3", axes={"x": "lora:diffusers-1=0,0.5"})
    # The prompt's own tag takes the weight (A1111's prompt stays tag for tag); the other LoRA stays as it was.
    assert [(r.prompt, r.loras) for r in study.lane_requests()] == [
        ("a red square <lora:diffusers-1:0>", (("diffusers-2", 1.0),)),
        ("a red square <lora:diffusers-1:0.5>", (("diffusers-2", 1.0),))]
    added = build_comparison(base, ["Euler"], "3", axes={"x": "lora:diffusers-2=0.5"}).lane_requests()
    assert added[0].loras == (("diffusers-2", 0.5),)


def test_a_lora_for_another_model_is_one_line_and_diffusers_logs_no_layer_dump(loras, tmp_path):
    """As a user meets it: the command prints one line (diffusers logs the state-dict error a line per layer)."""
    from tests.test_cli import _cli

    done = _cli("generate", "a red circle", "--steps", "2", "--lora", str(loras["one"]), "--outputs", str(tmp_path))
    errors = [line for line in done.stderr.splitlines() if not line.startswith(("loading ", "note: "))]
    assert done.returncode == 2 and errors == [
        "diffusers-tui: error: lora: diffusers-1.safetensors does not apply to this model: its layers are not this "
        "model's sizes (a LoRA for another model family, or a LyCORIS LoKr/LoHa file?)"], done.stderr[-2000:]


def test_models_lists_the_lora_and_embedding_files_by_the_names_that_find_them(tmp_path, capsys):
    from diffusers_tui.commands import main

    loras, embeddings = tmp_path / "loras", tmp_path / "embeddings"
    for path in (loras / "detail.safetensors", loras / "sub" / "detail.safetensors", loras / "sub" / "style.pt",
                 embeddings / "EasyNeg.safetensors", loras / "notes.txt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    assert main(["models", "--lora-dir", str(loras), "--embeddings-dir", str(embeddings)]) == 0
    out = capsys.readouterr().out
    lora_rows = [line.split()[0] for line in out.split("LoRAs (")[1].split("Embeddings")[0].splitlines()[3:] if line]
    assert lora_rows == ["detail", "detail", "style"] and "notes" not in out
    assert f"hidden: the name finds {loras / 'detail.safetensors'}" in out
    assert "EasyNeg" in out.split("Embeddings (")[1]
    assert main(["models"]) == 0 and "LoRAs: no folder (set lora_dir" in capsys.readouterr().out


@pytest.mark.parametrize("kind, key", [("LoKr", "lokr_w1"), ("LoHa", "hada_w1_a")])
def test_a_lycoris_file_that_is_not_a_lora_is_named_as_what_it_is(tmp_path, kind, key):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / f"{kind}.safetensors"
    save_file({f"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.{key}": torch.ones(4, 4)}, path)
    with pytest.raises(RequestError, match=f"{kind}.safetensors is a LyCORIS {kind} file, which diffusers' LoRA "
                                           "loader does not read"):
        Engine().run(GenerationRequest(prompt="a red circle", model="demo", steps=2, loras=((str(path), 1.0),)))


FAMILIES = ["sdxl", "sd3", "flux", "flux2_klein", "qwen_image", "sana", "chroma", "pixart_sigma", "auraflow"]


@pytest.mark.parametrize("family", FAMILIES)
def test_loras_load_on_every_family_whose_pipeline_has_a_lora_loader(family, tiny_sdxl, tmp_path):
    """SDXL's UNet and each transformer family's: weight 0 is the plain model and weight 1 changes the picture,
    where the pipeline has diffusers' LoRA loader; where it has none, one line says so."""
    from tests import tiny_transformers
    from tests.tiny_loras import make_lora

    model = tiny_sdxl if family == "sdxl" else getattr(tiny_transformers, f"build_tiny_{family}")(tmp_path / family)
    width, height = (128, 96) if family == "sana" else (32, 32)  # Sana's pipeline bins sizes to its own
    base = dict(prompt="a red circle", model=str(model), seed=1, steps=2, width=width, height=height,
                preview_method="none")
    engine = Engine()
    pipeline = engine.loaded_model(str(model)).pipeline
    if not hasattr(pipeline, "load_lora_weights"):
        with pytest.raises(RequestError, match="this model has no LoRA loader"):
            engine.run(GenerationRequest(**base, loras=(("any.safetensors", 1.0),)))
        return
    path = make_lora(str(model), tmp_path / "loras", seed=3)
    plain = _pixels(engine.run(GenerationRequest(**base)))
    zero = engine.run(GenerationRequest(**base, loras=((str(path), 0.0),)))
    one = engine.run(GenerationRequest(**base, loras=((str(path), 1.0),)))
    assert np.array_equal(_pixels(zero), plain) and np.abs(_pixels(one) - plain).max() > 0, type(pipeline).__name__
    assert one.recipe["loras"][0]["weight"] == 1.0


def test_each_image_of_a_batch_is_saved_with_the_loras_it_ran_with(tiny_sd, loras, tmp_path):
    from diffusers_tui.engine.files.recipe import read_parameters, read_recipe

    engine = Engine(LoadOptions(lora_dirs=(str(loras["folder"]),)))
    result = engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), seed=3, steps=3,
                                          preview_method="none", loras=(("diffusers-1", 0.8),), batch_count=2))
    grid = engine.save(result, tmp_path)
    images = sorted(path for path in tmp_path.rglob("[!.]*.png") if path != grid)
    assert len(images) == 2
    for path in images:
        assert "<lora:diffusers-1:0.8>" in read_parameters(path)
        assert [record["weight"] for record in read_recipe(path)["loras"]] == [0.8]

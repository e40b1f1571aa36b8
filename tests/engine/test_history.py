"""History: index.jsonl newest first, and recipes read back from our PNGs and from A1111's."""

import json

import pytest
from PIL import Image, PngImagePlugin

from diffusers_tui.engine.files import history, outputs, reading
from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.request import GenerationRequest, GenerationResult


def _save(folder, prompt, seed, scheduler="Euler"):
    request = GenerationRequest(prompt=prompt, scheduler=scheduler, steps=7, seed=seed, width=16, height=16)
    recipe = {"model": "demo", "scheduler_name": scheduler, "scheduler_class": "EulerDiscreteScheduler",
              "scheduler_config": {}, "width": 16, "height": 16, "mode": "text-to-image"}
    return outputs.save_result(GenerationResult(request, Image.new("RGB", (16, 16)), False, 1.0, 7, 7, None, recipe),
                               folder)


def test_history_lists_saves_newest_first_and_skips_what_it_cannot_read(tmp_path):
    first = _save(tmp_path, "first", 1)
    second = _save(tmp_path, "second", 2, "DDIM")
    with open(tmp_path / "index.jsonl", "a") as index:
        index.write("{not json\n")
        index.write(json.dumps({"path": "../../etc/passwd", "prompt": "escape"}) + "\n")
        index.write(json.dumps({"path": "/etc/passwd", "prompt": "absolute"}) + "\n")
    found = history.read_history(tmp_path)
    assert [entry.prompt for entry in found.entries] == ["second", "first"]
    assert found.entries[0].path == second.resolve() and found.entries[1].path == first.resolve()
    assert (found.entries[0].scheduler, found.entries[0].steps, found.entries[0].seed) == ("DDIM", 7, 2)
    assert found.skipped == 3
    assert history.read_history(tmp_path / "nothing-here").entries == []


def test_our_own_png_gives_back_the_whole_request(tmp_path):
    path = _save(tmp_path, "a red circle ☃", 42, "DPM++ 2M Karras")
    recipe = reading.recipe_from_png(path)
    assert recipe.source == "diffusers-tui" and not recipe.notes
    request = recipe.request(model="demo")
    assert (request.prompt, request.scheduler, request.schedule, request.steps, request.seed) == (
        "a red circle ☃", "DPM++ 2M", "Karras", 7, 42)
    assert (request.width, request.height) == (16, 16)


def _a1111_png(path, parameters: str):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_an_a1111_png_maps_its_sampler_and_says_what_it_could_not_use(tmp_path):
    path = _a1111_png(tmp_path / "a1111.png", (
        "a castle on a hill, (masterpiece:1.2)\nat dusk\n"
        "Negative prompt: blurry, lowres\n"
        'Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567890, Size: 512x768, '
        'Model hash: 6ce0161689, Model: v1-5-pruned, Clip skip: 2, Lora hashes: "a: 1, b: 2", Version: v1.9.4'))
    recipe = reading.recipe_from_png(path)
    assert recipe.source == "a1111"
    assert recipe.fields == {"prompt": "a castle on a hill, (masterpiece:1.2)\nat dusk", "negative_prompt": "blurry, lowres",
                             "steps": 28, "guidance": 6.5, "seed": 1234567890, "width": 512, "height": 768,
                             "scheduler": "DPM++ 2M", "schedule": "Karras", "noise": "A1111 CPU"}
    notes = " | ".join(recipe.notes)
    assert "'v1-5-pruned'" in notes and "not used: Clip skip" in notes  # Lora hashes find the tags' LoRAs
    assert recipe.lora_hashes == (("a", "1"), ("b", "2"))
    assert (recipe.request().scheduler, recipe.request().schedule) == ("DPM++ 2M", "Karras")


@pytest.mark.parametrize("sampler, schedule_type, expected", [
    ("Euler a", None, ("Euler a", "Automatic")), ("DPM++ SDE Karras", None, ("DPM++ SDE", "Karras")),
    ("euler", None, ("Euler", "Automatic")), ("UniPC", None, ("UniPC", "Automatic")),
    # A1111 reads a missing schedule type as Automatic: Karras for DPM++ 2M, which our Automatic is too.
    ("DPM++ 2M", "Automatic", ("DPM++ 2M", "Automatic")), ("Euler", "Karras", ("Euler", "Karras")),
    ("DPM++ 2M SDE", "Exponential", ("DPM++ 2M SDE", "Exponential")), ("LMS", "SGM Uniform", ("LMS", "SGM Uniform"))])
def test_a1111_samplers_and_schedule_types_are_registry_choices(sampler, schedule_type, expected):
    schedule = f"Schedule type: {schedule_type}, " if schedule_type else ""
    recipe = reading.parse_a1111(f"x\nSteps: 5, Sampler: {sampler}, {schedule}CFG scale: 7, Seed: 1, Size: 64x64")
    assert (recipe.fields["scheduler"], recipe.fields["schedule"]) == expected and not recipe.notes


def test_unmappable_samplers_and_schedules_are_named_not_guessed():
    recipe = reading.parse_a1111("x\nSteps: 5, Sampler: Euler Dy, CFG scale: 7, Seed: 1, Size: 64x64")
    assert "scheduler" not in recipe.fields and "unknown name 'Euler Dy'" in recipe.notes[0]
    recipe = reading.parse_a1111("x\nSteps: 5, Sampler: Euler a (diffusers), Schedule type: Karras, Seed: 1")
    assert "scheduler" not in recipe.fields and "Euler a (diffusers) has no Karras schedule" in recipe.notes[0]
    recipe = reading.parse_a1111("x\nSteps: 5, Sampler: Euler, Schedule type: Turbo, Seed: 1")
    assert "scheduler" not in recipe.fields and "unknown type 'Turbo'" in recipe.notes[0]


def test_every_a1111_sampler_and_schedule_type_of_1_10_is_read_as_itself():
    for sampler in ("Restart", "DPM++ 2M SDE Heun", "DPM++ 3M SDE", "DPM fast", "DPM adaptive", "DPM++ 2S a", "LCM"):
        for schedule in ("Align Your Steps", "KL Optimal", "Polyexponential", "Simple", "Normal", "DDIM"):
            recipe = reading.parse_a1111(f"x\nSteps: 5, Sampler: {sampler}, Schedule type: {schedule}, Seed: 1")
            assert (recipe.fields["scheduler"], recipe.fields["schedule"]) == (sampler, schedule) and not recipe.notes
    # DDIM, DDIM CFG++, PLMS and UniPC keep their own timesteps in A1111: the type written beside them is moot.
    for sampler in ("DDIM", "DDIM CFG++", "PLMS", "UniPC"):
        recipe = reading.parse_a1111(f"x\nSteps: 5, Sampler: {sampler}, Schedule type: Automatic, Seed: 1")
        assert (recipe.fields["scheduler"], recipe.fields["schedule"]) == (sampler, "Automatic") and not recipe.notes
    recipe = reading.parse_a1111("x\nSteps: 5, Sampler: euler, Seed: 1, RNG: NV")
    assert (recipe.fields["scheduler"], recipe.fields["noise"]) == ("Euler", "A1111 NV")  # A1111's, whatever the case


def test_pngs_without_a_recipe_or_not_pngs_are_refused_clearly(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(RequestError, match="from: .*carries no recipe"):
        reading.recipe_from_png(plain)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(RequestError, match="from: cannot read"):
        reading.recipe_from_png(text)
    with pytest.raises(RequestError, match="from: cannot read"):
        reading.recipe_from_png(tmp_path / "missing.png")


@pytest.mark.parametrize("build, tool, expected", [
    ("comfyui", "ComfyUI", {"steps": 18, "guidance": 6.5, "seed": 11, "width": 64, "height": 48,
                            "scheduler": "dpmpp_2m", "schedule": "karras", "noise": "ComfyUI"}),
    ("invokeai", "InvokeAI", {"steps": 19, "guidance": 7.5, "seed": 12, "width": 64, "height": 48,
                              "scheduler": "DPM++ 2M (diffusers)", "schedule": "Karras"}),
    ("fooocus", "Fooocus", {"steps": 30, "guidance": 4.0, "seed": 13, "width": 64, "height": 48,
                            "scheduler": "dpmpp_2m_sde_gpu", "schedule": "karras", "noise": "ComfyUI"}),
    ("novelai", "NovelAI", {"steps": 28, "guidance": 5.0, "seed": 14, "width": 64, "height": 48,
                            "scheduler": "Euler a", "schedule": "Uniform"}),
    ("sdnext", "a1111", {"steps": 17, "guidance": 6.0, "seed": 15, "width": 64, "height": 48,
                         "scheduler": "UniPC", "schedule": "Automatic"}),
])
def test_other_tools_pngs_come_back_as_requests(tmp_path, build, tool, expected):
    from tests import other_tools

    path = getattr(other_tools, build)(tmp_path / f"{build}.png")
    recipe = reading.recipe_from_png(path)
    assert recipe.source == tool
    assert recipe.fields["prompt"] == other_tools.PROMPT and recipe.fields["negative_prompt"] == other_tools.NEGATIVE
    assert {key: recipe.fields.get(key) for key in expected} == expected
    request = recipe.request(model="demo")  # it runs as a request here
    assert (request.scheduler, request.schedule) == (expected["scheduler"], expected["schedule"])


def test_what_another_tools_png_cannot_carry_over_is_named(tmp_path):
    from tests import other_tools

    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "c.png", sampler="my_custom_sampler",
                                                         scheduler="simple"))
    assert "scheduler" not in recipe.fields and "'my_custom_sampler' has no registry entry" in " ".join(recipe.notes)
    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "d.png", scheduler="turbo_custom"))
    assert recipe.fields["scheduler"] == "dpmpp_2m" and "'turbo_custom' is not one of ComfyUI's" in " ".join(recipe.notes)
    assert "v1-5-pruned" in " ".join(recipe.notes)  # their model name is not ours: said, not used
    # Every one of ComfyUI's own samplers and schedulers is read as itself.
    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "e.png", sampler="res_multistep", scheduler="simple"))
    assert (recipe.fields["scheduler"], recipe.fields["schedule"]) == ("res_multistep", "simple")

"""Other tools' PNGs as people and hostile files write them: LoRA nodes, wrong types, huge numbers.

Whatever sd-parsers hands back is read part by part; a part that cannot be used is a note,
and a value the request cannot take is one RequestError naming it, never another exception.
"""

from __future__ import annotations

import pytest

from diffusers_tui.engine import RequestError
from diffusers_tui.engine.files import reading
from tests import other_tools


def test_a_comfyui_graph_with_a_lora_loader_is_read_and_its_lora_taken(tmp_path):
    path = other_tools.comfyui(tmp_path / "lora.png", lora=("style.safetensors", 0.8))
    recipe = reading.recipe_from_png(path)
    assert recipe.source == "ComfyUI"
    assert recipe.fields["prompt"] == other_tools.PROMPT and recipe.fields["steps"] == 18
    assert (recipe.fields["scheduler"], recipe.fields["schedule"]) == ("dpmpp_2m", "karras")
    assert recipe.fields["loras"] == [["style.safetensors", 0.8]]
    notes = " ".join(recipe.notes)
    # Its strength_clip (1.0) differs from strength_model: one weight per LoRA here, and the note says which.
    assert "text-encoder strength 1.0 differs" in notes and "v1-5-pruned" in notes


def _set(node, key, value):
    def edit(graph):
        graph[node]["inputs"][key] = value
    return edit


HOSTILE = {
    "comfyui ckpt_name a dict": lambda p: other_tools.comfyui(p, edit=_set("4", "ckpt_name", {"a": 1})),
    "comfyui seed Infinity": lambda p: other_tools.comfyui(p, edit=_set("3", "seed", float("inf"))),
    "comfyui cfg 10**400": lambda p: other_tools.comfyui(p, edit=_set("3", "cfg", 10 ** 400)),
    "comfyui width Infinity": lambda p: other_tools.comfyui(p, edit=_set("5", "width", float("inf"))),
    "comfyui steps a list": lambda p: other_tools.comfyui(p, edit=_set("3", "steps", [1, 2])),
    "comfyui lora name a list": lambda p: other_tools.comfyui(p, lora=(["x"], float("nan"))),
    "invokeai positive_prompt a dict": lambda p: other_tools.invokeai(p, positive_prompt={"a": 1}),
    "invokeai model_name a list": lambda p: other_tools.invokeai(p, model={"model_name": ["a"], "base_model": "sd-1"}),
    "fooocus prompt an int": lambda p: other_tools.fooocus(p, prompt=5),
    "fooocus resolution 1e999": lambda p: other_tools.fooocus(p, resolution="(1e999, 64)"),
    "novelai uc a list": lambda p: other_tools.novelai(p, uc=["blurry"]),
    "novelai uc an int": lambda p: other_tools.novelai(p, uc=3),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_wrong_types_and_huge_numbers_are_notes_or_one_clear_error(tmp_path, case):
    path = HOSTILE[case](tmp_path / "hostile.png")
    try:
        recipe = reading.recipe_from_png(path)
    except RequestError as error:  # a value the request cannot take: named, with the file
        assert str(error).startswith("from:") and "hostile.png" in str(error)
        return
    recipe.request(model="demo")  # what was kept is a valid request
    for key, value in recipe.fields.items():
        if key == "loras":  # [name, weight] pairs, each checked
            assert all(isinstance(name, str) and weight == weight for name, weight in value)
            continue
        assert isinstance(value, (str, int, float)) and value == value  # no NaN, no containers


def test_what_was_changed_or_dropped_on_the_way_is_noted(tmp_path):
    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "a.png", edit=_set("3", "seed", 7.9)))
    assert recipe.fields["seed"] == 7 and "seed '7.9' is not a whole number: 7 is used" in recipe.notes
    recipe = reading.recipe_from_png(other_tools.fooocus(tmp_path / "b.png", resolution="(1e999, 64)"))
    assert "width" not in recipe.fields and any("is not a size" in note for note in recipe.notes)
    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "c.png", edit=_set("3", "seed", float("inf"))))
    assert "seed" not in recipe.fields and any("not a finite number" in note for note in recipe.notes)

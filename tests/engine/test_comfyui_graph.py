"""ComfyUI PNGs as its API writes them (the `prompt` graph alone), and what sd-parsers leaves out of a graph."""

from __future__ import annotations

import json

import pytest

from diffusers_tui.engine.files import comfyui_graph, other_tools as reader, reading
from tests import other_tools

EXPECTED = {"prompt": other_tools.PROMPT, "negative_prompt": other_tools.NEGATIVE, "steps": 18, "guidance": 6.5,
            "seed": 11, "width": 64, "height": 48, "scheduler": "dpmpp_2m", "schedule": "karras", "noise": "ComfyUI"}


def _fields(recipe):
    return {key: recipe.fields.get(key) for key in EXPECTED}


def test_a_png_from_comfyuis_api_with_the_graph_alone_re_runs_as_with_its_workflow(tmp_path):
    api = reading.recipe_from_png(other_tools.comfyui(tmp_path / "api.png", workflow=False))
    assert api.source == "ComfyUI" and _fields(api) == EXPECTED
    assert api.request(model="demo").scheduler == "dpmpp_2m"


def _advanced(graph):
    """KSamplerAdvanced, its seed from a primitive node, as API scripts often build it."""
    inputs = graph["3"]["inputs"]
    graph["3"]["class_type"] = "KSamplerAdvanced"
    del inputs["seed"], inputs["denoise"]
    inputs.update(noise_seed=["20", 0], add_noise="enable", start_at_step=0, end_at_step=10000,
                  return_with_leftover_noise="disable")
    graph["20"] = {"class_type": "PrimitiveNode", "inputs": {"value": 77}}


@pytest.mark.parametrize("workflow", [True, False])
def test_ksampler_advanced_keeps_its_noise_seed(tmp_path, workflow):
    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "a.png", edit=_advanced, workflow=workflow))
    assert {**_fields(recipe), "seed": 11} == EXPECTED and recipe.fields["seed"] == 77


def test_what_the_sampler_node_does_that_a_run_here_does_not_is_noted(tmp_path):
    def partial(graph):
        graph["3"]["inputs"]["denoise"] = 0.55
        graph["5"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["30", 0], "vae": ["4", 2]}}

    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "p.png", edit=partial, workflow=False))
    notes = " ".join(recipe.notes)
    assert "denoise 0.55" in notes and "starts from a VAEEncode latent" in notes


def test_a_graph_sd_parsers_cannot_read_is_walked_from_its_sampler(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_parse", lambda text, comfyui_api: None)
    recipe = reading.recipe_from_png(other_tools.comfyui(tmp_path / "w.png", edit=_advanced, workflow=False,
                                                         lora=("style.safetensors", 0.8)))
    assert recipe.source == "ComfyUI" and {**_fields(recipe), "seed": 11} == EXPECTED and recipe.fields["seed"] == 77
    notes = " ".join(recipe.notes)
    assert "v1-5-pruned.safetensors" in notes and recipe.fields["loras"] == [["style.safetensors", 0.8]]


def test_an_a1111_line_beside_a_disagreeing_comfyui_graph_is_used_and_the_graph_is_named(tmp_path):
    line = "a red circle\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64"
    path = other_tools._png(tmp_path / "both.png", {"parameters": line,
                                                    "prompt": json.dumps(_graph_of(tmp_path))})
    recipe = reading.recipe_from_png(path)
    assert recipe.fields["seed"] == 5 and recipe.fields["scheduler"] == "Euler"
    note = " ".join(recipe.notes)
    assert "ComfyUI graph" in note and "seed 11 (the line: 5)" in note and "A1111 line is used" in note


def _graph_of(tmp_path) -> dict:
    from PIL import Image

    with Image.open(other_tools.comfyui(tmp_path / "source.png", workflow=False)) as image:
        return json.loads(image.text["prompt"])


@pytest.mark.parametrize("graph", [
    {"1": {"class_type": "KSampler", "inputs": {"seed": ["1", 0], "positive": ["1", 0], "latent_image": ["1", 0],
                                                  "model": ["1", 0], "sampler_name": "euler", "steps": 4}}},
    {"1": {"class_type": "KSampler", "inputs": {"seed": ["2", 0], "positive": ["2", 0], "sampler_name": 5}},
     "2": {"class_type": "ConditioningSetArea", "inputs": {"conditioning": ["1", 0], "value": ["2", 0]}}},
    {"1": {"class_type": "KSampler", "inputs": []}, "2": "not a node", "3": {"class_type": 4, "inputs": {}}},
])
def test_looping_and_malformed_graphs_are_read_as_far_as_they_go_without_raising(graph):
    parsed = comfyui_graph.parse_graph(json.dumps(graph))
    reading_ = comfyui_graph.read_graph(parsed) if parsed else None
    result = reader.read_other_tool({"prompt": json.dumps(graph)})
    assert reading_ is None or isinstance(reading_.notes, list)
    assert result is None or result[0] == "ComfyUI"

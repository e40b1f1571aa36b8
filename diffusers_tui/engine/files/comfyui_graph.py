"""ComfyUI's API graph (a PNG's `prompt` chunk), read by following its links from the sampler node.

sd-parsers reads most ComfyUI PNGs; this walk reads what it leaves out (KSamplerAdvanced's noise_seed,
denoise, an image it starts from) and whole graphs it does not read. The graph is untrusted: nodes
without a class and inputs are skipped, links are followed a bounded number of hops, and values come
back raw for other_tools to check as it checks sd-parsers' (nothing here raises).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from diffusers_tui.engine.text import shown

#: The sampler nodes read, and the input that holds each one's seed.
SAMPLER_NODES = {"KSampler": "seed", "KSamplerAdvanced": "noise_seed"}
#: Links followed from one input before giving up (a graph can loop).
MAX_HOPS = 32


def parse_graph(graph_text: str | None) -> dict[str, dict] | None:
    """The API graph as {node id: node}, or None when the text is not one."""
    try:
        graph = json.loads(graph_text) if graph_text else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(graph, dict) or not graph:
        return None
    nodes = {key: node for key, node in graph.items()
             if isinstance(node, dict) and isinstance(node.get("class_type"), str) and isinstance(node.get("inputs"), dict)}
    return nodes or None


@dataclass
class GraphReading:
    """What the graph's first sampler pass says, as raw values (the caller checks them) and notes."""

    passes: int
    parameters: dict[str, Any] = field(default_factory=dict)
    prompt: Any = None
    negative_prompt: Any = None
    sampler_name: Any = None
    notes: list[str] = field(default_factory=list)
    #: The LoRA loader nodes on the sampler's model input, nearest the checkpoint first, each as
    #: (lora_name, strength_model, strength_clip): raw values, strength_clip None for a model-only loader.
    loras: list[tuple[Any, Any, Any]] = field(default_factory=list)


def read_graph(graph: dict[str, dict]) -> GraphReading | None:
    """The graph's first sampler pass, or None when it has no sampler node."""
    samplers = [key for key, node in graph.items() if node["class_type"] in SAMPLER_NODES]
    if not samplers:
        return None
    # The first pass: a sampler whose latent does not come out of another sampler.
    first = next((key for key in samplers if _source(graph, graph[key]["inputs"].get("latent_image"))[0] not in samplers),
                 samplers[0])
    node = graph[first]
    inputs = node["inputs"]
    reading = GraphReading(passes=len(samplers))
    # The names sd-parsers gives them, so one reader checks both.
    for name, key in (("seed", SAMPLER_NODES[node["class_type"]]), ("steps", "steps"), ("cfg_scale", "cfg"),
                      ("scheduler", "scheduler")):
        value = _value(graph, inputs.get(key))
        if value is not None:
            reading.parameters[name] = value
    reading.sampler_name = _value(graph, inputs.get("sampler_name"))
    for name, key in (("prompt", "positive"), ("negative_prompt", "negative")):
        text, note = _text(graph, inputs.get(key))
        setattr(reading, name, text)
        if note:
            reading.notes.append(f"its {name.replace('_', ' ')} {note}")
    reading.parameters.update(_size(graph, inputs.get("latent_image"), reading.notes))
    reading.notes.extend(_start_notes(graph, node))
    model = _model(graph, inputs.get("model"))
    reading.loras = _loras(graph, inputs.get("model"))
    if model:
        reading.parameters["CheckpointLoaderSimple"] = [{"ckpt_name": model}]
    return reading


def _model(graph, link) -> str | None:
    """The checkpoint (or UNet) file name behind a model input, through LoRA and patch nodes."""
    _, node = _source(graph, link)
    hops = 0
    while node is not None and hops < MAX_HOPS:
        for key in ("ckpt_name", "unet_name"):
            if isinstance(node["inputs"].get(key), str):
                return node["inputs"][key]
        _, node = _source(graph, node["inputs"].get("model"))
        hops += 1
    return None


def _loras(graph, link) -> list[tuple[Any, Any, Any]]:
    """The LoRA loaders (LoraLoader, LoraLoaderModelOnly, and custom nodes with a lora_name) a model input
    passes through on its way from the checkpoint; a loader of another branch of the graph is not this pass's."""
    found, hops = [], 0
    _, node = _source(graph, link)
    while node is not None and hops < MAX_HOPS:
        inputs = node["inputs"]
        if "lora_name" in inputs:
            found.append((_value(graph, inputs["lora_name"]), _value(graph, inputs.get("strength_model", 1.0)),
                          _value(graph, inputs["strength_clip"]) if "strength_clip" in inputs else None))
        _, node = _source(graph, inputs.get("model"))
        hops += 1
    return found[::-1]


def _source(graph, link) -> tuple[str | None, dict | None]:
    """The node a link [id, output] points at."""
    if isinstance(link, list) and len(link) == 2 and isinstance(link[0], (str, int)) and str(link[0]) in graph:
        return str(link[0]), graph[str(link[0])]
    return None, None


def _value(graph, value, hops: int = 0):
    """An input's value, following links into primitive nodes (PrimitiveNode, a seed or int node...)."""
    while isinstance(value, list) and hops < MAX_HOPS:
        _, node = _source(graph, value)
        if node is None:
            return None
        found = [v for k, v in node["inputs"].items() if k in ("value", "seed", "noise_seed", "int", "float", "string",
                                                                 "text", "number")]
        value, hops = (found[0] if found else None), hops + 1
    return None if isinstance(value, list) else value


def _text(graph, link) -> tuple[str | None, str | None]:
    """The prompt text a conditioning input comes from: a CLIPTextEncode's text (SDXL's: text_g)."""
    _, node = _source(graph, link)
    hops = 0
    while node is not None and hops < MAX_HOPS:
        kind, inputs = node["class_type"], node["inputs"]
        if "CLIPTextEncode" in kind:
            value = _value(graph, inputs.get("text", inputs.get("text_g")))
            return (value, None) if isinstance(value, str) else (None, "is not text: not used")
        # Conditioning passed through one node (ControlNet, area, timestep ranges): follow its conditioning.
        through = [v for k, v in inputs.items() if k in ("conditioning", "conditioning_1", "positive", "negative")]
        if len(through) != 1:
            return None, f"comes from a {shown(kind, 40)} node: not read"
        _, node = _source(graph, through[0])
        hops += 1
    return None, None


def _size(graph, link, notes: list[str]) -> dict[str, Any]:
    _, node = _source(graph, link)
    if node is None:
        return {}
    if "EmptyLatent" not in node["class_type"]:
        notes.append(f"it starts from a {shown(node['class_type'], 40)} latent (an image, say): this run starts "
                     "from noise")
        return {}
    size = {name: _value(graph, node["inputs"].get(name)) for name in ("width", "height")}
    return size if None not in size.values() else {}


def _start_notes(graph, node) -> list[str]:
    """What the sampler node does that a run here does not: partial denoise, a late start, no added noise."""
    inputs, notes = node["inputs"], []
    denoise = _value(graph, inputs.get("denoise"))
    if isinstance(denoise, (int, float)) and not isinstance(denoise, bool) and math.isfinite(denoise) and denoise < 1:
        notes.append(f"denoise {denoise:g}: this run denoises from pure noise")
    start = _value(graph, inputs.get("start_at_step"))
    if isinstance(start, int) and not isinstance(start, bool) and start > 0:
        notes.append(f"it starts at step {start}: this run starts at the first")
    if _value(graph, inputs.get("add_noise")) == "disable":
        notes.append("it adds no noise (add_noise disabled): this run starts from noise")
    return notes

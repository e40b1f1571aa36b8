"""Other tools' PNG metadata (ComfyUI, InvokeAI, Fooocus, NovelAI) read through sd-parsers, mapped onto a request.

sd-parsers knows each tool's layout; this module maps what it finds onto the registry's
samplers and schedule types and says what it could not carry over. It is handed the PNG's
text chunks alone (read bounded by files.untrusted), never the pixels. A1111-style
`parameters` (A1111 itself, SD.Next, Forge) are left to files.reading's own A1111 reader,
which knows A1111's schedule rules.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any, Callable

from diffusers_tui.engine.errors import SchedulerUnavailableError
from diffusers_tui.engine.files import comfyui_graph
from diffusers_tui.engine.models.loras import MAX_LORA_WEIGHT
from diffusers_tui.engine.sampling import registry
from diffusers_tui.engine.text import shown

#: Sampler names other tools write (ComfyUI and Fooocus use k-diffusion's; NovelAI prefixes
#: them with "k_"; InvokeAI adds "_k" for Karras), as registry samplers.
SAMPLERS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "euler_a": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
    "kdpm_2": "DPM2", "dpm_2_ancestral": "DPM2 a", "kdpm_2_a": "DPM2 a", "lms": "LMS", "dpmpp_2m": "DPM++ 2M",
    "dpmpp_sde": "DPM++ SDE", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2s": "DPM++ 2S", "ddim": "DDIM",
    "ddim_v3": "DDIM", "pndm": "PLMS", "uni_pc": "UniPC", "unipc": "UniPC", "ddpm": "DDPM", "deis": "DEIS",
}
#: ComfyUI's and NovelAI's schedule names, as A1111's schedule types.
SCHEDULES = {"normal": "Uniform", "native": "Uniform", "karras": "Karras", "exponential": "Exponential",
             "sgm_uniform": "SGM Uniform", "beta": "Beta"}
#: What each tool's own plain sampler name runs: InvokeAI's plain names are diffusers' defaults.
PLAIN_SCHEDULE = {"InvokeAI": "Uniform"}
#: Tools that sample with ComfyUI's code (Fooocus runs ComfyUI's samplers): their ids, schedulers and noise.
COMFYUI_SAMPLING = ("ComfyUI", "Fooocus")
#: Tools that step with diffusers' own scheduler classes.
DIFFUSERS_SAMPLING = ("InvokeAI",)


def read_other_tool(text: dict[str, str]):
    """(tool name, request fields, notes, LoRA hashes) from another tool's metadata, or None when there is none.

    The LoRA hashes are (name, hash) pairs where the tool writes them (Fooocus), for models.loras to look
    the files up by.

    `text` is the PNG's text chunks. sd-parsers reads each tool's layout; a ComfyUI graph is also walked
    (comfyui_graph), for what sd-parsers leaves out or cannot read. Returns None for A1111-style
    infotext, which has its own reader, even beside a ComfyUI graph.
    Whatever sd-parsers hands back is untrusted too: each part is read on its own, type-checked,
    and a part that cannot be read (or makes sd-parsers raise) is named in a note instead.
    """
    graph = comfyui_graph.parse_graph(text.get("prompt"))
    walked = comfyui_graph.read_graph(graph) if graph else None
    parsed = _parse(text, comfyui_api=graph is not None and "workflow" not in text)
    if parsed is None and (walked is None or "parameters" in text):
        return None
    if parsed is None:  # a ComfyUI graph sd-parsers cannot read: the walk alone
        tool, prompt, negative, sampler_name = "ComfyUI", walked.prompt, walked.negative_prompt, walked.sampler_name
        parameters, model_names, passes, metadata = dict(walked.parameters), [], walked.passes, {}
    else:
        tool, info, samplers = parsed
        sampler = samplers[0]
        metadata = _attempt(lambda: dict(info.metadata), {})
        parameters = {**metadata, **_attempt(lambda: dict(sampler.parameters), {})}
        prompt, negative = _attempt(lambda: info.full_prompt, None), _attempt(lambda: info.full_negative_prompt, None)
        sampler_name, passes = _attempt(lambda: str(sampler.name), "?"), len(samplers)
        # PromptInfo.models raises on a graph with a LoraLoader node (it hashes a list): read each model alone.
        models = _attempt(lambda: [getattr(sampler, "model", None)] + [s.model for s in samplers[1:]], [])
        model_names = [model.name for model in models if isinstance(getattr(model, "name", None), str)]
        if walked is not None and tool == "ComfyUI":  # what sd-parsers leaves out (KSamplerAdvanced's noise_seed)
            parameters = {**walked.parameters, **parameters}
    notes: list[str] = list(walked.notes) if walked is not None and tool == "ComfyUI" else []
    fields: dict[str, Any] = {}
    for key, value in (("prompt", prompt), ("negative_prompt", negative)):
        if isinstance(value, str):
            fields[key] = value
        elif value is not None:
            notes.append(f"its {key.replace('_', ' ')} is not text: not used")
    for key, name, whole in (("steps", "steps", True), ("cfg_scale", "guidance", False), ("seed", "seed", True)):
        if key in parameters:
            value, note = _number(key, parameters[key], whole)
            if value is not None:
                fields[name] = value
            if note:
                notes.append(note)
    size, note = _size(parameters)
    fields.update(size)
    if note:
        notes.append(note)
    choice, note = _sampler(tool, sampler_name if isinstance(sampler_name, str) else "?", parameters)
    if choice:
        fields["scheduler"], fields["schedule"] = choice
    if tool in COMFYUI_SAMPLING:  # its starting noise and its samplers' noise follow ComfyUI's rules
        fields["noise"] = "ComfyUI"
    if note:
        notes.append(note)
    if passes > 1:
        notes.append(f"{passes} sampler passes (a refiner or hires pass, say): only the first is used")
    notes.extend(_model_notes(tool, model_names, parameters))
    loras, lora_hashes, lora_notes = _loras(tool, walked, metadata)
    if loras:
        fields["loras"] = loras
    notes.extend(lora_notes)
    return tool, fields, tuple(notes), lora_hashes


def _parse(text: dict[str, str], comfyui_api: bool):
    """(tool, sd-parsers' PromptInfo, its samplers), or None when sd-parsers finds no other tool's metadata."""
    from PIL import Image
    from sd_parsers import Eagerness, ParserManager

    # sd-parsers reads `image.info`: a one-pixel stand-in carries the chunks, so no pixel of
    # the untrusted file is ever decoded.
    stand_in = Image.new("L", (1, 1))
    chunks = dict(text)
    if comfyui_api:
        # ComfyUI's API saves the `prompt` graph alone; sd-parsers reads a graph only beside a `workflow`
        # chunk, whose contents it does not need.
        chunks["workflow"] = json.dumps({"nodes": [], "links": []})
    stand_in.format, stand_in.info = "PNG", chunks
    try:
        info = ParserManager(eagerness=Eagerness.FAST).parse(stand_in)
        tool = info.generator.value if info is not None else None
        samplers = list(info.samplers) if info is not None else []
    except Exception:  # noqa: BLE001 - a malformed chunk is "no recipe", not a crash
        return None
    if tool in (None, "AUTOMATIC1111", "Unknown") or not samplers or not isinstance(tool, str):
        return None
    return tool, info, samplers


def _attempt(read: Callable[[], Any], default: Any) -> Any:
    """`read()`, or `default` when it raises: sd-parsers can raise anything on a hostile graph."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - untrusted input through a third-party parser
        return default


def _number(key: str, value: Any, whole: bool) -> tuple[int | float | None, str | None]:
    """A finite number from metadata, and a note when it was refused or changed on the way."""
    shown_value = shown(value, 40)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, f"{key} {shown_value!r} is not a number: not used"
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None, f"{key} {shown_value!r} is not a number: not used"
    if not math.isfinite(number):
        return None, f"{key} {shown_value!r} is not a finite number: not used"
    if not whole:
        return number, None
    if isinstance(value, int):
        return value, None  # exact, however large: the request says whether it is in range
    if not number.is_integer():
        return int(number), f"{key} {shown_value!r} is not a whole number: {int(number)} is used"
    return int(number), None


def _model_notes(tool: str, model_names: list[str], parameters: dict[str, Any]) -> list[str]:
    """What the PNG says of its model, which is its tool's name, not this machine's file."""
    notes = []
    names = set(model_names)
    names.update(node["ckpt_name"] for node in _as_list(parameters.get("CheckpointLoaderSimple"))
                 if isinstance(node, dict) and isinstance(node.get("ckpt_name"), str))
    if names:
        shown_names = ", ".join(sorted(shown(name, 80) for name in names if name))
        notes.append(f"model {shown_names} is {tool}'s name for it: the model chosen here is used")
    return notes


def _loras(tool: str, walked, metadata: dict[str, Any]) -> tuple[list[list], tuple[tuple[str, str], ...], list[str]]:
    """The LoRAs the tool ran with, as (name, weight) pairs for the request, the hashes it gives, and notes.

    ComfyUI: the LoraLoader nodes on the sampler's model input (strength_model; a different strength_clip is
    noted, as this tool runs one weight per LoRA). Fooocus: its `loras` list of [name, weight, hash], or its
    `lora_combined_N` fields ("name : weight"). InvokeAI: its `loras` list of {model or lora: {name...}, weight}.
    Whatever does not read as a name and a weight is named in a note; the files are looked for later."""
    found: list[tuple[Any, Any]] = []
    hashes: list[tuple[str, str]] = []
    notes: list[str] = []
    if tool == "ComfyUI" and walked is not None:
        for name, strength_model, strength_clip in walked.loras:
            found.append((name, strength_model))
            if strength_clip is not None and strength_clip != strength_model and isinstance(name, str):
                notes.append(f"LoRA {shown(name, 80)}: its text-encoder strength {shown(strength_clip, 20)} differs "
                             f"from its model strength {shown(strength_model, 20)}: both run at the model's here")
    elif tool == "Fooocus":
        listed = _as_list(metadata.get("loras"))
        for item in listed:
            if isinstance(item, (list, tuple)) and len(item) >= 2:
                found.append((item[0], item[1]))
                if len(item) >= 3 and isinstance(item[0], str) and isinstance(item[2], str) and item[2]:
                    hashes.append((item[0], item[2].strip().lower()))
            else:
                found.append((item, None))
        if not listed:
            for key in sorted(k for k in metadata if isinstance(k, str) and k.startswith("lora_combined_")):
                value = metadata[key]
                parts = value.split(" : ") if isinstance(value, str) else []
                if parts and parts[0] == "None":
                    continue  # an empty LoRA slot
                # "name : weight", or "enabled : name : weight"
                if len(parts) == 3 and parts[0] != "True":
                    continue
                found.append((parts[-2], parts[-1]) if len(parts) >= 2 else (value, None))
    elif tool == "InvokeAI":
        for item in _as_list(metadata.get("loras")):
            model = item.get("model") or item.get("lora") if isinstance(item, dict) else None
            name = model.get("name") or model.get("model_name") if isinstance(model, dict) else None
            found.append((name, item.get("weight") if isinstance(item, dict) else None))
    pairs = []
    for name, weight in found:
        if not isinstance(name, str) or not name.strip():
            notes.append(f"a LoRA entry {shown(name, 60)!r} names no file: left out")
            continue
        value, note = _number(f"LoRA {shown(name, 60)} weight", 1.0 if weight is None else weight, whole=False)
        if value is None or not -MAX_LORA_WEIGHT <= value <= MAX_LORA_WEIGHT:
            notes.append(note or f"LoRA {shown(name, 60)} weight {shown(weight, 20)} is out of range: left out")
            continue
        pairs.append([name.strip(), value])
    return pairs, tuple(hashes), notes


def _sampler(tool: str, name: str, parameters: dict[str, Any]) -> tuple[tuple[str, str] | None, str | None]:
    """(sampler, schedule) as the registry names them for another tool's sampler, and a note where it is not."""
    asked = str(parameters.get("scheduler") or parameters.get("noise_schedule") or "").strip().lower()
    if tool in COMFYUI_SAMPLING:  # ComfyUI's own ids and schedulers, which run here by those names
        return _comfyui_sampler(tool, name.strip(), asked)
    key = name.strip().lower().removeprefix("k_").removesuffix("_gpu")
    karras = key.endswith("_k")
    key = key.removesuffix("_k")
    sampler = SAMPLERS.get(key)
    if sampler is None:
        return None, f"{tool}'s sampler {shown(name, 60)!r} has no registry entry: the model's own scheduler is used"
    if tool in DIFFUSERS_SAMPLING and registry.exists(f"{sampler} (diffusers)"):
        sampler = f"{sampler} (diffusers)"  # InvokeAI steps with diffusers' own classes
    note = None
    if karras:
        schedule = "Karras"
    elif asked:
        schedule = SCHEDULES.get(asked, "Automatic")
        if asked not in SCHEDULES:
            note = f"{tool}'s schedule {shown(asked, 40)!r} has no counterpart here: {sampler} runs on Automatic"
    else:
        schedule = PLAIN_SCHEDULE.get(tool, "Automatic")
    try:
        entry, schedule = registry.resolve(sampler, schedule)
    except SchedulerUnavailableError:
        entry, schedule = registry.get(sampler), "Automatic"
        note = f"{tool}'s schedule for {sampler} is not one it offers here: Automatic is used"
    return (entry.name, schedule), note


def _comfyui_sampler(tool: str, name: str, schedule: str) -> tuple[tuple[str, str] | None, str | None]:
    try:
        entry, _ = registry.resolve(name)
    except SchedulerUnavailableError:
        entry = None
    if entry is None or entry.tool != "ComfyUI":
        return None, f"{tool}'s sampler {shown(name, 60)!r} has no registry entry: the model's own scheduler is used"
    if not schedule:
        return (entry.name, "Automatic"), None
    try:
        entry, schedule = registry.resolve(entry.name, schedule)
        return (entry.name, schedule), None
    except SchedulerUnavailableError:
        return (entry.name, "Automatic"), (f"{tool}'s schedule {shown(schedule, 40)!r} is not one of ComfyUI's here: "
                                           f"{entry.name} runs on Automatic (normal)")


def _size(parameters: dict[str, Any]) -> tuple[dict[str, int], str | None]:
    """Width and height wherever the tool keeps them (its own keys, ComfyUI's latent node, Fooocus' resolution)."""
    sources = [parameters, *[node for node in _as_list(parameters.get("EmptyLatentImage"))]]
    for source in sources:
        if isinstance(source, dict) and "width" in source and "height" in source:
            return _width_height(source["width"], source["height"])
    resolution = parameters.get("resolution")
    if isinstance(resolution, str) and len(resolution) < 40:  # "(1024, 1024)"
        try:
            width, height = ast.literal_eval(resolution)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return {}, f"resolution {shown(resolution, 40)!r} is not a size: the default size is used"
        return _width_height(width, height)
    return {}, None


def _width_height(width: Any, height: Any) -> tuple[dict[str, int], str | None]:
    (whole_width, width_note), (whole_height, height_note) = _number("width", width, True), _number("height", height, True)
    if whole_width is None or whole_height is None or width_note or height_note:
        return {}, f"size {shown(width, 20)}x{shown(height, 20)} is not a size: the default size is used"
    return {"width": whole_width, "height": whole_height}, None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []

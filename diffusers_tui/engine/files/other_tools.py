"""Other tools' PNG metadata (ComfyUI, InvokeAI, Fooocus, NovelAI) read through sd-parsers, mapped onto a request.

sd-parsers knows each tool's layout; this module maps what it finds onto the registry's
samplers and schedule types and says what it could not carry over. It is handed the PNG's
text chunks alone (read bounded by files.untrusted), never the pixels. A1111-style
`parameters` (A1111 itself, SD.Next, Forge) are left to files.reading's own A1111 reader,
which knows A1111's schedule rules.
"""

from __future__ import annotations

import ast
from typing import Any

from diffusers_tui.engine.errors import SchedulerUnavailableError
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


def read_other_tool(text: dict[str, str]):
    """(tool name, request fields, notes) from another tool's metadata, or None when sd-parsers finds none.

    `text` is the PNG's text chunks. Returns None for A1111-style infotext, which has its own reader.
    """
    from PIL import Image
    from sd_parsers import Eagerness, ParserManager

    # sd-parsers reads `image.info`: a one-pixel stand-in carries the chunks, so no pixel of
    # the untrusted file is ever decoded.
    stand_in = Image.new("L", (1, 1))
    stand_in.format, stand_in.info = "PNG", dict(text)
    try:
        info = ParserManager(eagerness=Eagerness.FAST).parse(stand_in)
    except Exception:  # noqa: BLE001 - a malformed chunk is "no recipe", not a crash
        return None
    if info is None or info.generator.value in ("AUTOMATIC1111", "Unknown") or not info.samplers:
        return None
    tool = info.generator.value
    sampler = info.samplers[0]
    parameters = {**info.metadata, **sampler.parameters}
    fields: dict[str, Any] = {"prompt": info.full_prompt, "negative_prompt": info.full_negative_prompt}
    notes: list[str] = []
    for key, name, convert in (("steps", "steps", int), ("cfg_scale", "guidance", float), ("seed", "seed", int)):
        if key in parameters:
            try:
                fields[name] = convert(parameters[key])
            except (TypeError, ValueError):
                notes.append(f"{key} {shown(parameters[key], 40)!r} is not a number: not used")
    fields.update(_size(parameters))
    choice, note = _sampler(tool, str(sampler.name), parameters)
    if choice:
        fields["scheduler"], fields["schedule"] = choice
    if note:
        notes.append(note)
    if len(info.samplers) > 1:
        notes.append(f"{len(info.samplers)} sampler passes (a refiner or hires pass, say): only the first is used")
    if info.models:
        names = ", ".join(sorted(shown(model.name, 80) for model in info.models if model.name))
        if names:
            notes.append(f"model {names} is {tool}'s name for it: the model chosen here is used")
    return tool, fields, tuple(notes)


def _sampler(tool: str, name: str, parameters: dict[str, Any]) -> tuple[tuple[str, str] | None, str | None]:
    key = name.strip().lower().removeprefix("k_").removesuffix("_gpu")
    karras = key.endswith("_k")
    key = key.removesuffix("_k")
    sampler = SAMPLERS.get(key)
    if sampler is None:
        return None, f"{tool}'s sampler {shown(name, 60)!r} has no registry entry: the model's own scheduler is used"
    asked = str(parameters.get("scheduler") or parameters.get("noise_schedule") or "").strip().lower()
    note = None
    if karras:
        schedule = "Karras"
    elif asked:
        schedule = SCHEDULES.get(asked, "Automatic")
        if asked not in SCHEDULES:
            note = f"{tool}'s schedule {shown(asked, 40)!r} has no diffusers option: {sampler} runs on Automatic"
    else:
        schedule = PLAIN_SCHEDULE.get(tool, "Automatic")
    try:
        entry, schedule = registry.resolve(sampler, schedule)
    except SchedulerUnavailableError:
        entry, schedule = registry.get(sampler), "Automatic"
        note = f"{tool}'s schedule for {sampler} is not one it offers here: Automatic is used"
    return (entry.name, schedule), note


def _size(parameters: dict[str, Any]) -> dict[str, int]:
    """Width and height wherever the tool keeps them: its own keys, ComfyUI's latent node, Fooocus' resolution."""
    sources = [parameters, *[node for node in _as_list(parameters.get("EmptyLatentImage"))]]
    for source in sources:
        if isinstance(source, dict) and "width" in source and "height" in source:
            try:
                return {"width": int(source["width"]), "height": int(source["height"])}
            except (TypeError, ValueError):
                return {}
    resolution = parameters.get("resolution")
    if isinstance(resolution, str) and len(resolution) < 40:  # "(1024, 1024)"
        try:
            width, height = ast.literal_eval(resolution)
            return {"width": int(width), "height": int(height)}
        except (ValueError, SyntaxError, TypeError):
            return {}
    return {}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []

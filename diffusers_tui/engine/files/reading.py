"""Reading a recipe back from any PNG: this tool's own JSON chunk, or an A1111 `parameters` line.

The A1111 sampler is mapped through the scheduler registry; everything that could not
be carried over is named in a note.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, replace
from typing import Any

from diffusers_tui.engine.errors import RequestError, SchedulerUnavailableError, UnreadableFileError
from diffusers_tui.engine.files.recipe import (OWN_NOISE_KEY, OWN_OPTIONS_KEY, OWN_PAG_KEY, OWN_RESCALE_KEY,
                                               OWN_SAMPLER_KEY, OWN_SCHEDULE_KEY, PARAMETERS_KEY, RECIPE_KEY)
from diffusers_tui.engine.files import comfyui_graph
from diffusers_tui.engine.files.other_tools import read_other_tool
from diffusers_tui.engine.files.untrusted import png_text
from diffusers_tui.engine.models.loras import MAX_LORA_WEIGHT
from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.sampling import registry as schedulers
from diffusers_tui.engine.sampling import sampler_options
from diffusers_tui.engine.text import shown

#: A1111's own pattern for `key: value` pairs (values with commas are JSON-quoted).
_A1111_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


#: A1111 keys this tool has no use for are listed in a note rather than silently dropped.
_A1111_USED = {"Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model", "Model hash", "Version",
               "Variation seed", "Variation seed strength", "Seed resize from", "Denoising strength",
               "Hires upscale", "Hires steps", "Hires upscaler", "Hires resize",
               "RNG", "ENSD", "Eta", "Eta DDIM", "Sigma noise", "Lora hashes", "Lora weights", "TI hashes", "Sigma churn", "Sigma tmin", "Sigma tmax", "Shift",
               OWN_SAMPLER_KEY, OWN_SCHEDULE_KEY,
               OWN_NOISE_KEY, OWN_OPTIONS_KEY, OWN_RESCALE_KEY, OWN_PAG_KEY}


@dataclass(frozen=True)
class Recipe:
    """Request fields read back from a PNG, and what could not be carried over."""

    fields: dict[str, Any]
    source: str  # "diffusers-tui", "a1111", or the other tool's name ("ComfyUI", "InvokeAI", ...)
    notes: tuple[str, ...] = ()
    #: The LoRA hashes the PNG gives (A1111's `Lora hashes`, Fooocus's list): (name, hash) pairs, by which
    #: its LoRAs are looked for (models.loras).
    lora_hashes: tuple[tuple[str, str], ...] = ()
    #: The embeddings the run used (A1111's `TI hashes`, our recipe's list): (name, hash) pairs, so the ones
    #: missing here can be named (models.loras.matched).
    embedding_hashes: tuple[tuple[str, str], ...] = ()

    def request(self, **overrides) -> GenerationRequest:
        """A validated request: these fields, then `overrides` (the model to run on, say)."""
        return GenerationRequest(**{**self.fields, **overrides})


def recipe_from_png(path: str | os.PathLike) -> Recipe:
    """The recipe stored in a PNG; RequestError("from") when it holds none this tool can read."""
    try:
        text = png_text(path)  # the text chunks alone: no pixel is decoded
    except UnreadableFileError as error:
        raise RequestError("from", str(error)) from None
    other = None if RECIPE_KEY in text else read_other_tool(text)
    if RECIPE_KEY in text:
        recipe = _own_recipe(text[RECIPE_KEY], path)
    elif other is not None:
        tool, fields, notes, lora_hashes = other
        recipe = Recipe(fields, tool, (f"read as a {tool} image",) + notes, lora_hashes)
    elif PARAMETERS_KEY in text:
        recipe = parse_a1111(text[PARAMETERS_KEY])
        recipe = replace(recipe, notes=recipe.notes + _graph_beside_a1111(text, recipe.fields))
    else:
        raise RequestError("from", f"{shown(path)} carries no recipe this tool can read: no diffusers-tui chunk, "
                                   "no A1111 'parameters' line, and none of ComfyUI, InvokeAI, Fooocus or NovelAI's "
                                   "metadata")
    fields, notes = checked_fields(recipe.fields, path)
    return replace(recipe, fields=fields, notes=recipe.notes + notes)


def _graph_beside_a1111(text: dict[str, str], fields: dict[str, Any]) -> tuple[str, ...]:
    """A note when the PNG also carries a ComfyUI graph: the A1111 line is what is read, and where the two
    disagree on the seed, steps or CFG scale, the note says so."""
    graph = comfyui_graph.parse_graph(text.get("prompt"))
    walked = comfyui_graph.read_graph(graph) if graph else None
    if walked is None:
        return ()
    differences = [f"{name} {shown(walked.parameters[key], 20)} (the line: {shown(fields[name], 20)})"
                   for name, key in (("seed", "seed"), ("steps", "steps"), ("guidance", "cfg_scale"))
                   if key in walked.parameters and name in fields and walked.parameters[key] != fields[name]]
    if differences:
        return (f"it also carries a ComfyUI graph, which says {', '.join(differences)}: the A1111 line is used",)
    return ("it also carries a ComfyUI graph, which agrees with its A1111 line: the line is used",)


def checked_fields(fields: dict[str, Any], path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Each field validated alone, as the request would: a bad one is one RequestError naming it.

    A scheduler this machine does not have is dropped with a note instead: the recipe
    still runs, on the model's own scheduler.
    """
    kept, notes = {}, []
    for key, value in fields.items():
        try:
            # A stand-in prompt, so a field is not blamed for the prompt it was checked without; a variation
            # strength goes with its seed, which it needs.
            partner = {"variation_seed": fields.get("variation_seed")} if key == "variation_strength" else {}
            GenerationRequest(**({key: value} if key == "prompt" else {"prompt": "-", key: value, **partner}))
        except RequestError as error:
            if key == "scheduler" and isinstance(value, str):
                notes.append(f"scheduler {shown(value, 80)!r} is not available here: the model's own is used")
                continue
            raise RequestError("from", f"{shown(path)}: its recipe's {shown(error, 300)}") from None
        kept[key] = value
    return kept, tuple(notes)


def _own_recipe(text: str, path) -> Recipe:
    try:
        request = json.loads(text)["request"]
        known = {name for name in GenerationRequest.__dataclass_fields__}
        fields = {key: value for key, value in request.items() if key in known}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise RequestError("from", f"{shown(path)}: its diffusers-tui recipe is damaged") from None
    dropped = sorted(shown(key, 40) for key in set(request) - set(fields))
    notes = (f"not used (from a newer version): {', '.join(dropped)}",) if dropped else ()
    try:
        embeddings = tuple((str(item["name"]), str(item["a1111_hash"])) for item in json.loads(text).get("embeddings") or ())
    except (TypeError, KeyError, AttributeError):
        embeddings, notes = (), notes + ("its list of embeddings is damaged: not checked",)
    return Recipe(fields, "diffusers-tui", notes, embedding_hashes=embeddings)


def parse_a1111(text: str) -> Recipe:
    """Request fields from an A1111 infotext: prompt, negative prompt, then `Steps: ..., ...`."""
    lines = text.strip().splitlines()
    settings_line = lines.pop() if lines and "Steps:" in lines[-1] else ""
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line.removeprefix("Negative prompt:").strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    pairs = {key.strip(): _unquote(value.strip()) for key, value in _A1111_PAIR.findall(settings_line)}
    fields: dict[str, Any] = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(negative_lines)}
    notes: list[str] = []
    for key, name, convert in (("Steps", "steps", int), ("CFG scale", "guidance", float), ("Seed", "seed", int),
                               ("Variation seed", "variation_seed", int),
                               ("Variation seed strength", "variation_strength", float),
                               ("Denoising strength", "strength", float)):
        if key in pairs:
            try:
                fields[name] = convert(pairs[key])
            except ValueError:
                notes.append(f"{key} {pairs[key]!r} is not a number: not used")
    if "Size" in pairs:
        try:
            width, height = (int(part) for part in pairs["Size"].lower().split("x"))
            fields.update(width=width, height=height)
        except ValueError:
            notes.append(f"Size {pairs['Size']!r} is not WIDTHxHEIGHT: not used")
    if "Seed resize from" in pairs:
        try:
            size = tuple(int(part) for part in pairs["Seed resize from"].lower().split("x"))
            if len(size) == 2 and min(size) > 0:  # A1111 wrote -1x-1 for none
                fields["seed_resize_from"] = size
        except ValueError:
            notes.append(f"Seed resize from {shown(pairs['Seed resize from'], 40)!r} is not WIDTHxHEIGHT: not used")
    sampler_key, schedule_key = ("Sampler", "Schedule type") if "Sampler" in pairs else (OWN_SAMPLER_KEY, OWN_SCHEDULE_KEY)
    if sampler_key in pairs:
        choice, note = _map_sampler(pairs[sampler_key], pairs.get(schedule_key))
        if choice:
            fields["scheduler"], fields["schedule"] = choice
        if note:
            notes.append(note)
    rng = pairs.get("RNG", "CPU")
    if rng in ("CPU", "GPU", "NV"):  # A1111's generator for this image's noise, emulated here where not CPU
        fields["noise"] = f"A1111 {rng}"
    else:
        notes.append(f"RNG {shown(rng, 40)!r} is not one of A1111's (CPU, GPU, NV): CPU noise is used")
        fields["noise"] = "A1111 CPU"
    if pairs.get(OWN_NOISE_KEY) in ("ComfyUI",):
        fields["noise"] = pairs[OWN_NOISE_KEY]
    for item in filter(str.strip, _unquote(pairs.get(OWN_OPTIONS_KEY, "")).split(",")):
        try:
            fields.setdefault("sampler_options", []).append(sampler_options.parse(item))
        except RequestError as error:
            notes.append(f"{OWN_OPTIONS_KEY} {shown(item.strip(), 40)!r}: {shown(error, 200)}: not used")
    if "ENSD" in pairs:
        try:
            fields["ensd"] = int(pairs["ENSD"])
        except ValueError:
            notes.append(f"ENSD {shown(pairs['ENSD'], 40)!r} is not a whole number: not used")
    for key, name in (("Eta", "eta"), ("Eta DDIM", "eta"), ("Sigma noise", "s_noise"), ("Sigma churn", "s_churn"),
                      ("Sigma tmin", "s_tmin"), ("Sigma tmax", "s_tmax"), ("Shift", "shift"),
                      (OWN_RESCALE_KEY, "guidance_rescale"), (OWN_PAG_KEY, "pag_scale")):
        if key in pairs:
            try:
                fields[name] = float(pairs[key])
            except ValueError:
                notes.append(f"{key} {shown(pairs[key], 40)!r} is not a number: not used")
    if "strength" in fields and {"Hires upscale", "Hires upscaler", "Hires resize"} & set(pairs):
        _read_hires(pairs, fields, notes)  # A1111 turns the hires fix on exactly so (ui.py)
    elif "strength" in fields:
        notes.append(f"made from an init image (img2img, Denoising strength {fields['strength']:g}): give "
                     "the picture (--init-image, or the app's init image field) to re-run it; without one it runs "
                     "from noise")
    if "Model" in pairs:
        notes.append(f"model {pairs['Model']!r} is A1111's name for it: the model chosen here is used")
    unused = sorted(set(pairs) - _A1111_USED)
    if unused:
        notes.append(f"not used: {', '.join(unused)}")
    lora_hashes = tuple((name.strip(), digest.strip().lower()) for name, _, digest in
                        (item.rpartition(":") for item in pairs.get("Lora hashes", "").split(",")) if name.strip())
    # Fooocus's A1111-style line names its LoRAs in `Lora weights` ("name: 0.5, ..."), not in prompt tags.
    for item in filter(str.strip, pairs.get("Lora weights", "").split(",")):
        name, _, weight = item.rpartition(":")
        try:
            value = float(weight) if weight.isascii() else math.nan
        except ValueError:
            value = math.nan
        if name.strip() and -MAX_LORA_WEIGHT <= value <= MAX_LORA_WEIGHT:
            fields.setdefault("loras", []).append([name.strip(), value])
        else:
            notes.append(f"Lora weights {shown(item.strip(), 80)!r} is not a LoRA's name and weight: left out")
    embedding_hashes = tuple((name.strip(), digest.strip().lower()) for name, _, digest in
                             (item.rpartition(":") for item in pairs.get("TI hashes", "").split(",")) if name.strip())
    return Recipe(fields, "a1111", tuple(notes), lora_hashes, embedding_hashes)


def _read_hires(pairs: dict[str, str], fields: dict[str, Any], notes: list[str]) -> None:
    """A1111's hires fix fields: the scale (2, its page's, where only the upscaler is given), steps, upscaler."""
    from diffusers_tui.engine.sampling.hires import LATENT_UPSCALERS, canonical_upscaler

    try:
        fields["hires_scale"] = float(pairs.get("Hires upscale", "2"))
        fields["hires_steps"] = int(pairs.get("Hires steps", "0"))
    except ValueError:
        notes.append("Hires upscale or Hires steps is not a number: the hires fix is left out")
        fields.pop("hires_scale", None)
        return
    if "Hires resize" in pairs and "Hires upscale" not in pairs:
        try:
            wide, high = (int(part) for part in pairs["Hires resize"].lower().split("x"))
        except ValueError:
            wide = high = 0
        width, height = fields.get("width"), fields.get("height")
        if width and height and wide * height == high * width and wide > 0:
            fields["hires_scale"] = wide / width
        else:
            notes.append(f"Hires resize {shown(pairs['Hires resize'], 40)!r} (a size of its own, cropped to fit) "
                         "is not run here: the hires fix doubles the size instead")
    name = pairs.get("Hires upscaler", "Latent")
    try:
        fields["hires_upscaler"] = canonical_upscaler(name)
    except RequestError:
        fields["hires_upscaler"] = "Lanczos"
        notes.append(f"Hires upscaler {shown(name, 40)!r} (an upscaler model) is not loaded here: Lanczos is used "
                     f"(the others: {', '.join([*LATENT_UPSCALERS, 'Nearest'])})")


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    return value


def _map_sampler(sampler: str, schedule: str | None) -> tuple[tuple[str, str] | None, str | None]:
    """(sampler, schedule type) in the registry for an A1111 sampler and schedule type, or None and why not.

    As A1111 reads them: a missing schedule type is Automatic (A1111's per-sampler default,
    which the registry's Automatic follows), and a name may carry its schedule ("DPM++ 2M Karras").
    """
    schedule = (schedule or "").strip()
    note = None
    try:
        entry, resolved = schedulers.resolve(sampler, schedule or None, prefer_a1111=True)
    except SchedulerUnavailableError as error:
        return None, (f"sampler {sampler!r}{f' with schedule {schedule!r}' if schedule else ''}: "
                      f"{str(error).partition(': ')[2]}; the model's own scheduler is used")
    return (entry.name, resolved), note

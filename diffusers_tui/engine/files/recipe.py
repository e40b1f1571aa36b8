"""The recipe a PNG carries: A1111's `parameters` line, our JSON, and a plain-diffusers snippet.

Written into every saved image, and read back by `files.reading`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.files.snippet import reproduce_snippet

RECIPE_KEY = "diffusers-tui"
PARAMETERS_KEY = "parameters"


#: Keys A1111 stores and ignores: where a sampler A1111 lacks is written, so A1111 never runs
#: another sampler under its name (an unknown `Sampler` is silently DPM++ 2M Karras there).
OWN_SAMPLER_KEY, OWN_SCHEDULE_KEY = "diffusers-tui sampler", "diffusers-tui schedule"
#: Where a run's noise followed ComfyUI's rules, which A1111's RNG field cannot say.
OWN_NOISE_KEY = "diffusers-tui noise"
#: The engine samplers' own options (engine.sampling.sampler_options), which A1111 has no field for.
OWN_OPTIONS_KEY = "diffusers-tui sampler options"
#: CFG rescale (diffusers' guidance_rescale), which A1111 itself has no field for.
OWN_RESCALE_KEY = "diffusers-tui guidance rescale"
#: Perturbed-attention guidance's scale, which A1111 itself has no field for.
OWN_PAG_KEY = "diffusers-tui PAG scale"


def a1111_parameters(request: GenerationRequest, recipe: dict[str, Any]) -> str:
    """The A1111 infotext line, as A1111 writes it: prompt lines, then `Steps: ..., Sampler: ..., ...`.

    An unconditional run (the UNet loop) has no prompt and no CFG, so neither is written.
    """
    unconditional = recipe.get("mode") == "unet"
    prompt, lora_hashes = _with_lora_tags(request.prompt, recipe.get("loras") or [])
    lines = [] if unconditional else [prompt]
    if request.negative_prompt and not unconditional:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    fields = [f"Steps: {request.steps}"]
    sampler, schedule, is_a1111 = _sampler_facts(recipe)
    if sampler and is_a1111:
        fields.append(f"Sampler: {sampler}")
        if schedule:  # DDIM and PLMS keep their own timesteps: A1111 ignores a schedule type for them
            fields.append(f"Schedule type: {schedule}")
    else:
        fields.append(f"{OWN_SAMPLER_KEY}: {_quoted(sampler or recipe.get('scheduler_class', ''))}")
        if schedule:
            fields.append(f"{OWN_SCHEDULE_KEY}: {schedule}")
    if not unconditional:
        fields.append(f"CFG scale: {request.guidance:g}")
    fields += noise_setting_fields(request, recipe)
    fields += [
        f"Seed: {request.seed}",
        *_variation_fields(request),
        f"Size: {recipe.get('width')}x{recipe.get('height')}",
        f"Model: {_quoted(str(recipe.get('model', request.model)))}",
    ]
    if request.init_image is not None:  # img2img: A1111's own field, the strength the run took
        from diffusers_tui.engine.sampling.img2img import strength

        fields.append(f"Denoising strength: {strength(request):g}")
    fields += _hires_fields(request)
    if lora_hashes:
        fields.append(f"Lora hashes: {json.dumps(lora_hashes)}")
    embeddings = recipe.get("embeddings") or []
    if embeddings:  # A1111's: each embedding's name and the start of its file's SHA-256
        fields.append("TI hashes: " + json.dumps(", ".join(f"{item['name']}: {item['a1111_hash']}" for item in embeddings)))
    if recipe.get("model_revision"):
        fields.append(f"Model hash: {recipe['model_revision'][:10]}")
    convention = (recipe.get("scheduler_config") or {}).get("convention", "A1111 CPU")
    if convention == "ComfyUI":
        fields.append(f"{OWN_NOISE_KEY}: ComfyUI")
    else:  # A1111's CPU noise (a CPU generator seeded with the seed), or its GPU or NV generator
        fields.append(f"RNG: {convention.removeprefix('A1111 ')}")
        ensd = (recipe.get("scheduler_config") or {}).get("ensd", 0)
        if ensd:
            fields.append(f"ENSD: {ensd}")
    fields.append(f"Version: diffusers-tui {_version()}")
    lines.append(", ".join(fields))
    return "\n".join(lines)


def _with_lora_tags(prompt: str, loras: list[dict]) -> tuple[str, str]:
    """The prompt with a `<lora:name:weight>` tag for each LoRA it does not already name (given by --lora),
    and A1111's `Lora hashes` value ("name: short hash, ..."), as A1111 writes them."""
    from pathlib import Path

    from diffusers_tui.engine.models.loras import prompt_tags

    tagged = {name for name, _ in prompt_tags(prompt)}
    tags, hashes = [], []
    for lora in loras:
        name = lora["name"] if lora["name"] in tagged else Path(lora["path"]).stem
        if lora["name"] not in tagged:
            tags.append(f"<lora:{name}:{lora['weight']:g}>")
        if lora.get("a1111_hash"):
            hashes.append(f"{name}: {lora['a1111_hash']}")
    return " ".join([prompt, *tags]) if tags else prompt, ", ".join(hashes)


def _variation_fields(request: GenerationRequest) -> list[str]:
    """A1111's variation seed and seed resize fields, as it writes them: only where they are set."""
    fields = []
    if request.variation_strength:
        fields += [f"Variation seed: {request.variation_seed or 0}",
                   f"Variation seed strength: {request.variation_strength:g}"]
    if request.seed_resize_from is not None:
        fields.append(f"Seed resize from: {request.seed_resize_from[0]}x{request.seed_resize_from[1]}")
    return fields


def _hires_fields(request: GenerationRequest) -> list[str]:
    """A1111's hires fix fields, as it writes them (Hires steps only where not 0: the first pass's steps)."""
    if request.hires_scale is None:
        return []
    from diffusers_tui.engine.sampling.hires import strength

    fields = [f"Denoising strength: {strength(request):g}", f"Hires upscale: {request.hires_scale:g}"]
    if request.hires_steps:
        fields.append(f"Hires steps: {request.hires_steps}")
    return [*fields, f"Hires upscaler: {_quoted(request.hires_upscaler)}"]


def noise_setting_fields(request: GenerationRequest, recipe: dict[str, Any]) -> list[str]:
    """Eta, Sigma noise and churn as A1111 writes them, only where the sampler took them ("Eta DDIM" for DDIM,
    whose default is 0), and Shift (a flow model's, which A1111 does not run)."""
    from diffusers_tui.engine.sampling.noise_settings import SETTINGS, unused_settings

    name, unused = unused_settings(request)
    keys = {"eta": "Eta DDIM" if (name or "").startswith("DDIM") else "Eta", "s_noise": "Sigma noise",
            "s_churn": "Sigma churn", "s_tmin": "Sigma tmin", "s_tmax": "Sigma tmax"}
    fields = [f"{keys[setting]}: {getattr(request, setting):g}" for setting, (unset, _) in SETTINGS.items()
              if name and getattr(request, setting) != unset and setting not in unused]
    if request.shift is not None:
        fields.append(f"Shift: {request.shift:g}")
    # Written where it was applied: not on a pipeline that has none (SD 1.x's image-to-image one drops it).
    passed = "call_arguments" not in recipe or "guidance_rescale" in (recipe.get("call_arguments") or {})
    if request.guidance_rescale and recipe.get("mode") != "unet" and passed:
        fields.append(f"{OWN_RESCALE_KEY}: {request.guidance_rescale:g}")
    if request.pag_scale:
        fields.append(f"{OWN_PAG_KEY}: {request.pag_scale:g}")
    taken = [(option, value) for option, value in request.sampler_options if option not in unused]
    if name and taken:
        fields.append(f"{OWN_OPTIONS_KEY}: " + _quoted(", ".join(f"{option}={value:g}" for option, value in taken)))
    return fields


def _sampler_facts(recipe: dict[str, Any]) -> tuple[str | None, str, bool]:
    """(sampler, the schedule type it ran on, whether A1111 has it), from the run's facts."""
    from diffusers_tui.engine.errors import SchedulerUnavailableError
    from diffusers_tui.engine.sampling import registry

    name = recipe.get("scheduler_name")
    if not name:
        return None, "", False
    try:
        entry, schedule = registry.resolve(name, recipe.get("schedule") or None)
    except SchedulerUnavailableError:
        return name, "", False
    return entry.name, recipe.get("schedule_used", entry.concrete(schedule)), entry.a1111


def _quoted(value: str) -> str:
    """A value as A1111 writes one that holds a comma or a quote: JSON-quoted."""
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ',:"\n') else value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("diffusers-tui")
    except PackageNotFoundError:
        return "0+unknown"


def recipe_json(request: GenerationRequest, recipe: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": 1,
        "request": request.to_dict(),
        **recipe,
        "diffusers_tui": _version(),
        "reproduce": reproduce_snippet(request, recipe),
    }


def png_info(request: GenerationRequest, recipe: dict[str, Any]):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    # iTXt keeps any Unicode exactly as given (tEXt is Latin-1 only).
    info.add_itxt(PARAMETERS_KEY, a1111_parameters(request, recipe))
    info.add_itxt(RECIPE_KEY, json.dumps(recipe_json(request, recipe), ensure_ascii=False))
    return info


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON recipe stored in a PNG saved by this tool (OutputError if it has none)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = image.text.get(RECIPE_KEY)  # type: ignore[attr-defined]
    except OSError as error:
        raise OutputError(f"cannot read {path}: {error}") from None
    if text is None:
        raise OutputError(f"{path} carries no diffusers-tui recipe")
    return json.loads(text)


def read_parameters(path: str | os.PathLike) -> str | None:
    from PIL import Image

    with Image.open(path) as image:
        return image.text.get(PARAMETERS_KEY)  # type: ignore[attr-defined]

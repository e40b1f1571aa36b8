"""The recipe a PNG carries: A1111's `parameters` line, our JSON, and a plain-diffusers snippet.

Written into every saved image, and read back by `files.reading`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.request import GenerationRequest

RECIPE_KEY = "diffusers-tui"
PARAMETERS_KEY = "parameters"


def a1111_parameters(request: GenerationRequest, recipe: dict[str, Any]) -> str:
    """The A1111 infotext line that other tools already read."""
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    sampler = recipe.get("scheduler_name") or recipe.get("scheduler_class", "")
    fields = [
        f"Steps: {request.steps}",
        f"Sampler: {sampler}",
        f"CFG scale: {request.guidance:g}",
        f"Seed: {request.seed}",
        f"Size: {recipe.get('width')}x{recipe.get('height')}",
        f"Model: {recipe.get('model', request.model)}",
        f"Version: diffusers-tui {_version()}",
    ]
    if recipe.get("model_revision"):
        fields.insert(-1, f"Model hash: {recipe['model_revision'][:10]}")
    lines.append(", ".join(fields))
    return "\n".join(lines)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("diffusers-tui")
    except PackageNotFoundError:
        return "0+unknown"


def reproduce_snippet(request: GenerationRequest, recipe: dict[str, Any]) -> str:
    """A short plain-diffusers script that makes the same image."""
    model = recipe.get("model_repo_id") or recipe.get("model_path") or request.model
    options = dict(recipe.get("scheduler_config", {}))
    if recipe.get("mode") == "unet":
        return "\n".join([
            "import torch, diffusers",
            f"unet = diffusers.UNet2DModel.from_pretrained({model!r}, subfolder='unet')",
            f"scheduler = diffusers.{recipe['scheduler_class']}.from_config({options!r})",
            f"scheduler.set_timesteps({request.steps})",
            f"g = torch.Generator().manual_seed({request.seed})",
            f"x = torch.randn((1, unet.config.in_channels, {recipe['height']}, {recipe['width']}), generator=g)"
            " * scheduler.init_noise_sigma",
            "with torch.no_grad():",
            "    for t in scheduler.timesteps:",
            "        eps = unet(scheduler.scale_model_input(x, t), t).sample",
            "        x = scheduler.step(eps, t, x, generator=g).prev_sample",
        ])
    return "\n".join([
        "import torch, diffusers",
        f"pipe = diffusers.DiffusionPipeline.from_pretrained({model!r})",
        f"pipe.scheduler = diffusers.{recipe['scheduler_class']}.from_config({options!r})",
        f"image = pipe({request.prompt!r}, negative_prompt={request.negative_prompt or None!r}, "
        f"num_inference_steps={request.steps}, guidance_scale={request.guidance!r}, "
        f"width={recipe['width']}, height={recipe['height']}, "
        f"generator=torch.Generator().manual_seed({request.seed})).images[0]",
    ])


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

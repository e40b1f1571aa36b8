"""The recipe a PNG carries: A1111's `parameters` line, our JSON, and a plain-diffusers snippet.

Written into every saved image, and read back by `files.reading`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.sampling import variation

RECIPE_KEY = "diffusers-tui"
#: The stand-in scheduler class of the project's own samplers (engine.sampling.sigma).
ENGINE_CLASS = "SigmaSamplerScheduler"
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
    if request.guidance_rescale and recipe.get("mode") != "unet":
        fields.append(f"{OWN_RESCALE_KEY}: {request.guidance_rescale:g}")
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


def reproduce_snippet(request: GenerationRequest, recipe: dict[str, Any]) -> str:
    """A plain-diffusers script that makes the same image and saves it as reproduced.png.

    It imports torch and diffusers only. The scheduler config goes in as JSON (a `repr`
    would write `-inf`, which is not Python); the dtype and device are the run's; noise
    comes from a CPU generator, as in the run, so on the CPU the pixels are the same.
    """
    model = recipe.get("model_repo_id") or recipe.get("model_path") or request.model
    config = json.dumps(recipe.get("scheduler_config", {}), sort_keys=True)
    dtype, device = recipe.get("dtype", "float32"), recipe.get("device", "cpu")
    if recipe["scheduler_class"] == ENGINE_CLASS:
        # The project's own sampler, through its stand-in scheduler (it needs diffusers-tui installed).
        scheduler_lines = [f"from diffusers_tui.engine import {ENGINE_CLASS}",
                           f"scheduler = {ENGINE_CLASS}.from_config(config)"]
    else:
        scheduler_lines = [f"scheduler = diffusers.{recipe['scheduler_class']}.from_config(config)"]
    head = [
        "import json",
        "",
        "import torch",
        "import diffusers",
        "",
        f"config = json.loads({config!r})",
        *scheduler_lines,
    ]
    if recipe.get("mode") == "unet":
        import diffusers

        from diffusers_tui.engine.sampling.preflight import accepts

        takes_generator = recipe["scheduler_class"] == ENGINE_CLASS or accepts(
            getattr(diffusers, recipe["scheduler_class"]).step, "generator")
        return "\n".join([
            *head,
            f"unet = diffusers.UNet2DModel.from_pretrained({model!r}, subfolder='unet', dtype=torch.{dtype})"
            f".to({device!r}).eval()",
            f"scheduler.set_timesteps({request.steps}, device={device!r})",
            f"generator = torch.Generator().manual_seed({request.seed})",
            *_unet_starting_noise(recipe, device, dtype, request),
            "x = x * scheduler.init_noise_sigma",
            "with torch.inference_mode():",
            "    for t in scheduler.timesteps:",
            "        noise_pred = unet(scheduler.scale_model_input(x, t), t).sample",
            f"        x = scheduler.step(noise_pred, t, x{', generator=generator' if takes_generator else ''}).prev_sample",
            "pixels = ((x[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()",
            "from PIL import Image",
            "Image.fromarray(pixels).save('reproduced.png')",
        ])
    # Components loaded without: the folder's absent ones ([null, null], as SD3 without T5), the safety checker.
    left_out: dict[str, Any] = {name: None for name in recipe.get("absent_components", ())}
    if recipe.get("without_safety_checker"):
        left_out.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    safety = "".join(f", {name}={value!r}" for name, value in left_out.items())
    pipeline_class = recipe.get("pipeline_class") or "DiffusionPipeline"
    lines = [*head, f"pipe = diffusers.{pipeline_class}.from_pretrained({model!r}, dtype=torch.{dtype}{safety})"
                    f".to({device!r})", "pipe.scheduler = scheduler"]
    if _needs_uncond(recipe):  # a CFG++ sampler steps along the unconditional estimate: it watches for it
        lines.append("scheduler.watch_uncond(getattr(pipe, 'unet', None) or pipe.transformer)")
    if _engine_flow(recipe):  # a flow schedule starting below σ = 1 starts from σ₀ · the pipeline's noise
        lines.append("scheduler.watch_start(pipe.transformer)")
    loras = recipe.get("loras") or []
    for index, lora in enumerate(loras):  # the same files, at the same weights (see engine.models.loras)
        lines.append(f"pipe.load_lora_weights({lora['path']!r}, adapter_name='lora_{index}')")
    if loras:
        lines.append(f"pipe.set_adapters({[f'lora_{index}' for index in range(len(loras))]!r}, "
                     f"adapter_weights={[lora['weight'] for lora in loras]!r})")
    for embedding in recipe.get("embeddings") or []:  # the same files, as the same words (engine.models.embeddings)
        path, token = embedding["path"], embedding["name"]
        if embedding.get("encoders") == 2:  # SDXL's: one tensor for each text encoder
            reader = ("safetensors.torch.load_file(path)" if path.endswith(".safetensors") else
                      "torch.load(path, map_location='cpu', weights_only=True)")
            lines += ["import safetensors.torch", f"path = {path!r}", f"embedding = {reader}",
                      f"pipe.load_textual_inversion(embedding['clip_l'], token={token!r}, "
                      "text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)",
                      f"pipe.load_textual_inversion(embedding['clip_g'], token={token!r}, "
                      "text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)"]
        else:
            lines.append(f"pipe.load_textual_inversion({path!r}, token={token!r})")
    if recipe.get("vae_mode") in ("sliced", "tiled"):
        lines.append("pipe.vae.enable_slicing()")
    if recipe.get("vae_mode") == "tiled":
        lines.append("pipe.vae.enable_tiling()")
    compel = recipe.get("compel")
    if compel:  # A1111 emphasis and BREAK, as compel writes them
        lines += [f"from compel import {compel['wrapper']}",
                  f"conditioning = {compel['wrapper']}(pipe)({compel['prompt']!r}, "
                  f"negative_prompt={compel['negative_prompt']!r})"]
        prompt = ("prompt_embeds=conditioning.embeds, negative_prompt_embeds=conditioning.negative_embeds"
                  + (", pooled_prompt_embeds=conditioning.pooled_embeds, "
                     "negative_pooled_prompt_embeds=conditioning.negative_pooled_embeds"
                     if compel["wrapper"] == "CompelForSDXL" else ""))
    # The run's own guidance, negative prompt and family switches (older recipes: classifier-free guidance).
    arguments = dict(recipe.get("call_arguments") or {"guidance_scale": request.guidance,
                                                       "negative_prompt": request.negative_prompt or None})
    if compel:
        arguments.pop("negative_prompt", None)
    else:
        prompt = f"prompt={request.prompt!r}"  # by name: Flux.2 takes an image first
    extra = "".join(f"{key}={value!r}, " for key, value in arguments.items())
    lines.append(f"generator = torch.Generator().manual_seed({request.seed})")
    if variation.applies(request):  # A1111's variation seed or seed resize, as the run drew it
        lines += variation.snippet_lines(request, "pipe.unet.config.in_channels", "pipe.vae_scale_factor",
                                         recipe["height"], recipe["width"], device, dtype, _convention(recipe))
        extra += "latents=latents, "
    elif _draws_its_own_start(recipe):  # A1111's GPU or NV starting noise, as the run drew it
        lines += ["factor = pipe.vae_scale_factor",
                  f"latents = scheduler.starting_noise((1, pipe.unet.config.in_channels, {recipe['height']} // factor, "
                  f"{recipe['width']} // factor), {device!r}, torch.{dtype})"]
        extra += "latents=latents, "
    if recipe.get("step_generator"):  # this pipeline steps without its generator: hand it over, as the run did
        lines += ["step = scheduler.step",
                  "scheduler.step = lambda *args, **kwargs: step(*args, **{'generator': generator, **kwargs})"]
    return "\n".join([
        *lines,
        f"image = pipe({prompt}, num_inference_steps={request.steps}, {extra}"
        f"width={recipe['width']}, height={recipe['height']}, generator=generator).images[0]",
        "image.save('reproduced.png')",
    ])


def _needs_uncond(recipe: dict[str, Any]) -> bool:
    """Whether the run's engine sampler is a CFG++ one (it reads the model's unconditional output)."""
    if recipe.get("scheduler_class") != ENGINE_CLASS:
        return False
    from diffusers_tui.engine.sampling.sigma import catalogue

    try:
        return catalogue.sampler(str((recipe.get("scheduler_config") or {}).get("sampler"))).cfgpp
    except KeyError:
        return False


def _engine_flow(recipe: dict[str, Any]) -> bool:
    return recipe.get("scheduler_class") == ENGINE_CLASS and bool((recipe.get("scheduler_config") or {}).get("flow"))


def _draws_its_own_start(recipe: dict[str, Any]) -> bool:
    """Whether the run's starting noise came from the engine's A1111 GPU or NV generator."""
    return recipe.get("scheduler_class") == ENGINE_CLASS and (recipe.get("scheduler_config") or {}).get(
        "convention") in ("A1111 GPU", "A1111 NV")


def _convention(recipe: dict[str, Any]) -> str | None:
    """The engine sampler's noise convention; None for a diffusers class (the pipeline's CPU generator)."""
    return (recipe.get("scheduler_config") or {}).get("convention") if recipe.get("scheduler_class") == ENGINE_CLASS \
        else None


def _unet_starting_noise(recipe: dict[str, Any], device: str, dtype: str, request=None) -> list[str]:
    shape = f"(1, unet.config.in_channels, {recipe['height']}, {recipe['width']})"
    if request is not None and variation.applies(request):
        return variation.snippet_lines(request, "unet.config.in_channels", "1", recipe["height"], recipe["width"],
                                       device, dtype, _convention(recipe), name="x")
    if _draws_its_own_start(recipe):
        return [f"x = scheduler.starting_noise({shape}, {device!r}, torch.{dtype})"]
    return [f"x = torch.randn({shape}, generator=generator, dtype=torch.float32).to({device!r}, torch.{dtype})"]


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

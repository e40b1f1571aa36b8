"""The plain-diffusers script a recipe carries: it makes the same image and saves it as reproduced.png."""

from __future__ import annotations

import json
from typing import Any

from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.sampling import img2img, variation

#: The stand-in scheduler class of the project's own samplers (engine.sampling.sigma).
ENGINE_CLASS = "SigmaSamplerScheduler"


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
            *(_unet_init_start(request, recipe, device, dtype) if recipe.get("init_image") else
              [*_unet_starting_noise(recipe, device, dtype, request), "x = x * scheduler.init_noise_sigma"]),
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
    size = f"width={recipe['width']}, height={recipe['height']}, "
    if "pag_scale" in arguments and not recipe.get("init_image"):  # perturbed-attention guidance: the PAG pipeline
        lines += ["pipe = diffusers.AutoPipelineForText2Image.from_pipe(pipe, enable_pag=True)",
                  "pipe.scheduler = scheduler"]
    if recipe.get("init_image"):  # img2img: the image-to-image pipeline from the same modules, the same picture
        if variation.applies(request):  # A1111's variation noise for the start, as the run drew it
            lines += [*variation.snippet_lines(request, "pipe.unet.config.in_channels", "pipe.vae_scale_factor",
                                               recipe["height"], recipe["width"], device, dtype, _convention(recipe),
                                               name="variation_noise"),
                      "scheduler.img2img_noise = variation_noise"]
        lines += img2img.snippet_lines(request, recipe)
        strength = 1.0 if recipe["scheduler_class"] == ENGINE_CLASS else img2img.strength(request)
        size = f"image=init_image, strength={strength!r}, " + (size if recipe["init_image"].get("pass_size") else "")
    elif variation.applies(request):  # A1111's variation seed or seed resize, as the run drew it
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
    if recipe.get("hires"):
        return "\n".join([*lines, *_hires_lines(request, recipe, prompt, extra, size), "image.save('reproduced.png')"])
    return "\n".join([
        *lines,
        f"image = pipe({prompt}, num_inference_steps={request.steps}, {extra}{size}generator=generator).images[0]",
        "image.save('reproduced.png')",
    ])


def _hires_lines(request: GenerationRequest, recipe: dict[str, Any], prompt: str, extra: str, size: str) -> list[str]:
    """A1111's hires fix as the run made it: the first pass's latents (or picture) upscaled, then an img2img
    pass from them with its own scheduler, from a fresh generator of the same seed (engine.sampling.hires)."""
    from diffusers_tui.engine.sampling import hires

    second = recipe["hires"]
    steps, strength = second["steps"], second["strength"]
    upscaler, width, height = second["upscaler"], second["width"], second["height"]
    first_call = f"pipe({prompt}, num_inference_steps={request.steps}, {extra}{size}generator=generator"
    if upscaler in hires.LATENT_UPSCALERS:
        mode, antialias = hires.LATENT_UPSCALERS[upscaler]
        lines = [f"latents = {first_call}, output_type='latent').images"]
        import diffusers

        if hasattr(getattr(diffusers, recipe.get("pipeline_class") or "", None), "_unpack_latents"):
            # Flux-like pipelines hand out packed tokens: unpacked to (B, C, h, w), as the run did.
            lines += [f"latents = pipe._unpack_latents(latents, {recipe['height']}, {recipe['width']}, "
                      "pipe.vae_scale_factor)", "latents = latents[:, :, 0] if latents.ndim == 5 else latents"]
        lines += ["factor = pipe.vae_scale_factor",
                 f"start = torch.nn.functional.interpolate(latents.float(), size=({height} // factor, {width} // factor), "
                 f"mode={mode!r}, antialias={antialias!r}).to(latents.dtype)"]
    else:
        lines = ["from PIL import Image", f"first = {first_call}).images[0]",
                 f"start = first.resize(({width}, {height}), resample=Image.{'LANCZOS' if upscaler == 'Lanczos' else 'NEAREST'})"]
    config = json.dumps(second["scheduler_config"], sort_keys=True)
    engine = recipe["scheduler_class"] == ENGINE_CLASS
    scheduler_class = ENGINE_CLASS if engine else f"diffusers.{recipe['scheduler_class']}"
    if engine:  # the engine sampler runs its own part of the schedule: the pipeline keeps it whole
        call_steps, call_strength = steps, 1.0
    else:
        from diffusers_tui.engine.sampling.img2img import exact_step_count

        call_steps = exact_step_count(steps, strength)
        call_strength = strength
    lines += [f"scheduler = {scheduler_class}.from_config(json.loads({config!r}))",
              "pipe = diffusers.AutoPipelineForImage2Image.from_pipe(pipe"
              + (", enable_pag=True)" if "pag_scale" in (recipe.get("call_arguments") or {}) else ")"),
              "pipe.scheduler = scheduler"]
    if _needs_uncond(recipe):
        lines.append("scheduler.watch_uncond(getattr(pipe, 'unet', None) or pipe.transformer)")
    lines.append(f"generator = torch.Generator().manual_seed({request.seed})")
    if recipe.get("step_generator"):
        lines += ["step = scheduler.step",
                  "scheduler.step = lambda *args, **kwargs: step(*args, **{'generator': generator, **kwargs})"]
    takes_size = f"width={width}, height={height}, " if second.get("takes_size") else ""
    # The second pass's own call arguments (its pipeline's: no starting latents, no argument it lacks).
    if second.get("call_arguments") is not None:
        arguments = dict(second["call_arguments"])
        if "prompt_embeds" in prompt:
            arguments.pop("negative_prompt", None)
        extra = "".join(f"{key}={value!r}, " for key, value in arguments.items())
    else:
        extra = extra.replace("latents=latents, ", "")
    return [*lines, f"image = pipe({prompt}, num_inference_steps={call_steps}, {extra}image=start, "
                    f"strength={call_strength!r}, {takes_size}generator=generator).images[0]"]


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


def _unet_init_start(request: GenerationRequest, recipe: dict[str, Any], device: str, dtype: str) -> list[str]:
    """The UNet loop's first sample from the init picture, as engine.sampling.img2img.unet_start makes it."""
    lines = [*img2img.snippet_lines(request, recipe)[:-2], "import numpy as np",
             "pixels = torch.from_numpy(np.asarray(init_image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]",
             f"pixels = pixels.to({device!r}, torch.{dtype})"]
    if recipe["scheduler_class"] == ENGINE_CLASS:  # its config's denoise: the tool's part of the schedule
        if variation.applies(request):  # A1111's variation noise for the start, as the run drew it
            lines += [*variation.snippet_lines(request, "unet.config.in_channels", "1", recipe["height"],
                                               recipe["width"], device, dtype, _convention(recipe),
                                               name="variation_noise"),
                      "scheduler.img2img_noise = variation_noise"]
        return [*lines, "x = scheduler.add_noise(pixels, None, None)"]
    return [*lines,
            f"start = ({request.steps} - min(int({request.steps} * {img2img.strength(request)!r}), {request.steps}))"
            " * scheduler.order",
            "scheduler.timesteps = scheduler.timesteps[start:]",
            "if hasattr(scheduler, 'set_begin_index'):",
            "    scheduler.set_begin_index(start)",
            f"noise = torch.randn(pixels.shape, generator=generator, dtype=torch.float32).to({device!r}, torch.{dtype})",
            "x = scheduler.add_noise(pixels, noise, scheduler.timesteps[:1])"]

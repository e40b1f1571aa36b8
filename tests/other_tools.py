"""PNG fixtures with each other tool's metadata layout: ComfyUI, InvokeAI, Fooocus, NovelAI and SD.Next.

Each is built as that tool writes it (the chunk names and JSON shapes sd-parsers reads), with
a red-circle prompt, a seed, steps, a CFG scale, a size and a sampler, so a test can check that
each comes back as a request.
"""

from __future__ import annotations

import json

from PIL import Image, PngImagePlugin

PROMPT, NEGATIVE = "a red circle on a blue background", "blurry"


def _png(path, chunks: dict[str, str]):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8), "blue").save(path, pnginfo=info)
    return path


def comfyui(path, sampler="dpmpp_2m", scheduler="karras", lora=None, edit=None, workflow=True):
    """A ComfyUI PNG; `lora` puts a LoraLoader (name, strength) between checkpoint and sampler, `edit` changes the graph."""
    graph = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 11, "steps": 18, "cfg": 6.5, "sampler_name": sampler, "scheduler": scheduler, "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    if lora:
        name, strength = lora
        graph["10"] = {"class_type": "LoraLoader", "inputs": {
            "lora_name": name, "strength_model": strength, "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}}
        graph["3"]["inputs"]["model"] = ["10", 0]
        for node in ("6", "7"):
            graph[node]["inputs"]["clip"] = ["10", 1]
    if edit:
        edit(graph)
    chunks = {"prompt": json.dumps(graph)}
    if workflow:
        chunks["workflow"] = json.dumps({"nodes": [], "links": []})
    return _png(path, chunks)


def invokeai(path, scheduler="dpmpp_2m_k", **changes):
    metadata = {"generation_mode": "txt2img", "positive_prompt": PROMPT, "negative_prompt": NEGATIVE, "width": 64,
                "height": 48, "seed": 12, "steps": 19, "cfg_scale": 7.5, "scheduler": scheduler,
                "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"}}
    metadata.update(changes)
    return _png(path, {"invokeai_metadata": json.dumps(metadata)})


def fooocus(path, sampler="dpmpp_2m_sde_gpu", scheduler="karras", **changes):
    parameters = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "styles": "['Fooocus V2']", "performance": "Speed",
                  "resolution": "(64, 48)", "guidance_scale": 4.0, "sharpness": 2.0, "adm_guidance": "(1.5, 0.8, 0.3)",
                  "base_model": "juggernautXL_v8Rundiffusion.safetensors", "base_model_hash": "aeb7e9e689",
                  "refiner_model": "None", "sampler": sampler, "scheduler": scheduler, "seed": 13, "steps": 30,
                  "version": "Fooocus v2.3.1"}
    parameters.update(changes)
    return _png(path, {"parameters": json.dumps(parameters), "fooocus_scheme": "fooocus"})


def novelai(path, sampler="k_euler_ancestral", noise_schedule="native", **changes):
    comment = {"prompt": PROMPT, "steps": 28, "height": 48, "width": 64, "scale": 5.0, "uncond_scale": 1.0,
               "cfg_rescale": 0.0, "seed": 14, "n_samples": 1, "noise_schedule": noise_schedule, "sampler": sampler,
               "uc": NEGATIVE, "strength": 0.7, "noise": 0.0}
    comment.update(changes)
    return _png(path, {"Title": "AI generated image", "Description": PROMPT, "Software": "NovelAI",
                       "Source": "Stable Diffusion XL C1E1DE52", "Generation time": "4.2",
                       "Comment": json.dumps(comment)})


def sdnext(path):
    parameters = (f"{PROMPT}\nNegative prompt: {NEGATIVE}\n"
                  "Steps: 17, Sampler: UniPC, CFG scale: 6, Seed: 15, Size: 64x48, Parser: Full parser, "
                  "Model: v1-5-pruned, Model hash: 6ce0161689, Backend: Diffusers, App: SD.Next, "
                  "Version: 2bd4d4b, Operations: txt2img")
    return _png(path, {"parameters": parameters})

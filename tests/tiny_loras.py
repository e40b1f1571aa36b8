"""Tiny LoRA files for the tests: made with peft on the tiny SD pipeline, as diffusers' own LoRA tests make them."""

from __future__ import annotations


def make_lora(model, folder, seed: int, kohya: bool = False):
    """A random rank-4 LoRA on the UNet's attention projections (peft), as diffusers saves one, or renamed to
    kohya's keys (lora_unet_..._to_q.lora_down.weight, with .alpha) as A1111's LoRAs come."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    pipe = StableDiffusionPipeline.from_pretrained(model)
    torch.manual_seed(seed)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                     init_lora_weights=False))
    state = get_peft_model_state_dict(pipe.unet)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{'kohya' if kohya else 'diffusers'}-{seed}"
    if not kohya:
        StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=state, weight_name=f"{name}.safetensors")
        return folder / f"{name}.safetensors"
    renamed = {}
    for key, tensor in state.items():
        module, kind = key.rsplit(".lora_", 1)
        stem = "lora_unet_" + module.replace(".", "_")
        renamed[f"{stem}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = tensor.contiguous()
        renamed[f"{stem}.alpha"] = torch.tensor(4.0)
    save_file(renamed, folder / f"{name}.safetensors")
    return folder / f"{name}.safetensors"

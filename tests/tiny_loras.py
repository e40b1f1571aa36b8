"""Tiny LoRA files for the tests: made with peft on the tiny SD pipeline, as diffusers' own LoRA tests make them."""

from __future__ import annotations


def make_lora(model, folder, seed: int, kohya: bool = False):
    """A random rank-4 LoRA on the denoiser's attention projections (peft; a UNet's or a transformer's), as
    diffusers saves one, or (a UNet's) renamed to kohya's keys (lora_unet_..._to_q.lora_down.weight, with
    .alpha) as A1111's LoRAs come."""
    import torch
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    pipe = DiffusionPipeline.from_pretrained(model)
    denoiser_name = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    denoiser = getattr(pipe, denoiser_name)
    torch.manual_seed(seed)
    denoiser.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                    init_lora_weights=False))
    state = get_peft_model_state_dict(denoiser)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{'kohya' if kohya else 'diffusers'}-{seed}"
    if not kohya:
        type(pipe).save_lora_weights(folder, **{f"{denoiser_name}_lora_layers": state},
                                     weight_name=f"{name}.safetensors")
        return folder / f"{name}.safetensors"
    renamed = {}
    for key, tensor in state.items():
        module, kind = key.rsplit(".lora_", 1)
        stem = "lora_unet_" + module.replace(".", "_")
        renamed[f"{stem}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = tensor.contiguous()
        renamed[f"{stem}.alpha"] = torch.tensor(4.0)
    save_file(renamed, folder / f"{name}.safetensors")
    return folder / f"{name}.safetensors"

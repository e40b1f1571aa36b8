"""Preview overhead on SD3- and Flux-shaped transformer pipelines on a GPU: time, peak memory, synchronisations.

    python benchmarks/gpu_transformers.py [--family sd3 flux] [--size 1024] [--steps 28] [--repeats 3]
                                          [--layers-fraction 1.0]

Builds each pipeline with its family's real denoiser and VAE sizes and random weights,
bfloat16 (nothing is downloaded): SD3 medium's MMDiT (24 blocks, 1536 wide) and Flux
dev's (19 double and 38 single blocks, 3072 wide, guidance embedding), their 16-channel
VAEs, and a TAESD decoder from its config. The text encoders keep their real output
widths at one layer each (prompt encoding is not what is measured). Then the engine as
the app runs it, with `latent` and `taesd` live previews, against plain `pipe(...)`,
alternating. Goals: time <= 1.02, peak memory <= 1.05, no synchronisation added per step.
`--layers-fraction` keeps that share of the transformer blocks where the full one does
not fit. Without CUDA it says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from gpu_preview import measure  # benchmarks/ is on the path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.tiny_transformers' offline T5 tokenizer


def build(family: str, folder: str, fraction: float) -> None:
    import torch
    from diffusers import (AutoencoderKL, AutoencoderTiny, FlowMatchEulerDiscreteScheduler, FluxPipeline,
                           FluxTransformer2DModel, SD3Transformer2DModel, StableDiffusion3Pipeline)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from diffusers_tui.engine.demo.train import build_tokenizer
    from tests.tiny_transformers import t5_tokenizer

    def layers(n: int) -> int:
        return max(1, round(n * fraction))

    clip_tokens, t5_tokens = build_tokenizer(), t5_tokenizer()
    clip_tokens.model_max_length = 77

    def clip(width: int, projection: bool):
        config = CLIPTextConfig(vocab_size=len(clip_tokens), hidden_size=width, intermediate_size=width * 4,
                                num_hidden_layers=1, num_attention_heads=width // 64, max_position_embeddings=77,
                                projection_dim=width, bos_token_id=clip_tokens.bos_token_id,
                                eos_token_id=clip_tokens.eos_token_id, pad_token_id=clip_tokens.pad_token_id)
        return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)

    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tokens), d_model=4096, d_kv=64, d_ff=10240, num_layers=1,
                                 num_heads=64, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1))
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        use_quant_conv=False, use_post_quant_conv=False, sample_size=1024)
    if family == "sd3":
        vae.register_to_config(scaling_factor=1.5305, shift_factor=0.0609)
        transformer = SD3Transformer2DModel(sample_size=128, patch_size=2, in_channels=16, num_layers=layers(24),
                                            attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
                                            caption_projection_dim=1536, pooled_projection_dim=2048,
                                            out_channels=16, pos_embed_max_size=192)
        pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                        vae=vae, text_encoder=clip(768, True), tokenizer=clip_tokens,
                                        text_encoder_2=clip(1280, True), tokenizer_2=clip_tokens, text_encoder_3=t5,
                                        tokenizer_3=t5_tokens)
    else:
        vae.register_to_config(scaling_factor=0.3611, shift_factor=0.1159)
        transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=layers(19),
                                             num_single_layers=layers(38), attention_head_dim=128,
                                             num_attention_heads=24, joint_attention_dim=4096,
                                             pooled_projection_dim=768, guidance_embeds=True)
        scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                    max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
        pipe = FluxPipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=clip(768, False),
                            tokenizer=clip_tokens, text_encoder_2=t5, tokenizer_2=t5_tokens)
    pipe.to(torch.bfloat16).save_pretrained(folder)
    AutoencoderTiny(latent_channels=16).save_pretrained(os.path.join(folder, "taesd"))  # taesd3/taef1's shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=["sd3", "flux"], choices=["sd3", "flux"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers-fraction", type=float, default=1.0)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_transformers: no CUDA device here; these figures need a GPU machine")
        return

    from diffusers_tui.engine import Engine, LoadOptions
    from diffusers_tui.engine.sampling import registry

    for family in args.family:
        folder = tempfile.mkdtemp(prefix=f"{family}-random-")
        build(family, folder, args.layers_fraction)
        engine = Engine(LoadOptions(device="cuda", dtype="auto"))  # auto: bfloat16 for both families
        loaded = engine.loaded_model(folder)
        pipe = loaded.pipeline
        guidance = 3.5 if family == "flux" else 7.0
        prompt = "a red circle on a blue background"
        entry, _ = registry.resolve("Euler", flow=True)

        def plain() -> None:
            pipe.scheduler = registry.build(entry, loaded.original_scheduler_config)
            with torch.inference_mode():
                pipe(prompt=prompt, num_inference_steps=args.steps, guidance_scale=guidance, height=args.size,
                     width=args.size, generator=torch.Generator().manual_seed(0), output_type="pil")

        print(f"device {torch.cuda.get_device_name()}, {family}-shaped pipeline (random weights, "
              f"{args.layers_fraction:.0%} of its blocks), {loaded.dtype}, {args.size}x{args.size}, "
              f"{args.steps} Euler steps, median of {args.repeats}; load notes: {'; '.join(loaded.notes)}")
        request = dict(prompt=prompt, model=folder, scheduler="Euler", steps=args.steps, seed=0, guidance=guidance,
                       width=args.size, height=args.size)
        measure(engine, plain, request, args.steps, args.repeats, {"latent": "<= 1.02", "taesd": "<= 1.02"})
        del engine, loaded, pipe
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

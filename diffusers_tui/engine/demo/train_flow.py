"""Train `demo-flow`: a Stable Diffusion 3 layout (MMDiT + flow matching) on the shapes dataset.

    python -m diffusers_tui.engine.demo.train_flow --out DIR [--minutes 60] [--steps N]

The transformer is the only part trained. It reuses the demo's VAE and its TAESD preview
decoder (same latent space) and the demo's CLIP text encoder, given a projection (identity)
so it can serve as both of SD3's CLIP encoders; SD3's optional T5 is left out, as SD3 allows.
Writes `DIR/demo-flow` with a `training.json`; saves the averaged weights every
--checkpoint-every steps so a long CPU run can be judged before it ends.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusers_tui.engine.demo.shapes import all_specs, draw_batch
from diffusers_tui.engine.demo.train import EMA, SD_IMAGE_SIZE, StepPlan, apply_step

DEMO_SD = Path(__file__).parent / "demo-sd"
FLOW_SHIFT = 1.0  # 64 image tokens: SD3's 3.0 is for 4096; less shift at lower resolution


def build_transformer():
    """The MMDiT: 2x2 patches of the demo's 16x16 latents, four joint blocks 128 wide."""
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(
        sample_size=SD_IMAGE_SIZE // 4, patch_size=2, in_channels=4, out_channels=4, num_layers=4,
        attention_head_dim=32, num_attention_heads=4, joint_attention_dim=128, caption_projection_dim=128,
        pooled_projection_dim=128, pos_embed_max_size=SD_IMAGE_SIZE // 4,
    )


def clip_with_projection():
    """The demo's CLIP text encoder as CLIPTextModelWithProjection (SD3 pools through a projection)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    plain = CLIPTextModel.from_pretrained(DEMO_SD / "text_encoder")
    config = CLIPTextConfig(**{**plain.config.to_dict(), "projection_dim": plain.config.hidden_size})
    projected = CLIPTextModelWithProjection(config)
    projected.text_model.load_state_dict(plain.state_dict())
    with torch.no_grad():  # identity: the pooled embedding is the demo encoder's own
        projected.text_projection.weight.copy_(torch.eye(config.hidden_size))
    return projected.eval()


def build_pipeline(transformer):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    from diffusers_tui.engine.demo.train import build_tokenizer

    vae = AutoencoderKL.from_pretrained(DEMO_SD / "vae")
    vae.register_to_config(shift_factor=0.0)  # SD3's pipeline subtracts a shift; the demo latents have none
    text_encoder = clip_with_projection()
    tokenizer = build_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT), vae=vae.eval(),
        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=copy.deepcopy(text_encoder),
        tokenizer_2=tokenizer, text_encoder_3=None, tokenizer_3=None,
    )


class RepeatedTokenAttention:
    """SD3's joint attention where the last context token stands for `repeats` identical tokens.

    Without T5, SD3's pipeline pads the context with 256 rows of zeros. Identical rows stay
    identical through every block (no position embedding on text), and in attention n equal
    keys weigh as one key with log(n) added to its score. So training on one row with that
    bias computes exactly what the pipeline will run, at a sixteenth of the context cost.
    """

    def __init__(self, repeats: int):
        self.bias = math.log(repeats)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        batch = hidden_states.shape[0]
        image_tokens = hidden_states.shape[1]

        def heads(x, norm=None):
            x = x.view(batch, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)
            return norm(x) if norm is not None else x

        query = heads(attn.to_q(hidden_states), attn.norm_q)
        key = heads(attn.to_k(hidden_states), attn.norm_k)
        value = heads(attn.to_v(hidden_states))
        query = torch.cat([query, heads(attn.add_q_proj(encoder_hidden_states), attn.norm_added_q)], dim=2)
        key = torch.cat([key, heads(attn.add_k_proj(encoder_hidden_states), attn.norm_added_k)], dim=2)
        value = torch.cat([value, heads(attn.add_v_proj(encoder_hidden_states))], dim=2)
        mask = torch.zeros(key.shape[2], dtype=query.dtype, device=query.device)
        mask[-1] = self.bias
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask[None])
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * query.shape[-1]).to(query.dtype)
        out, context = out[:, :image_tokens], out[:, image_tokens:]
        if not attn.context_pre_only:
            context = attn.to_add_out(context)
        return attn.to_out[1](attn.to_out[0](out)), context


def caption_embeddings(pipe, captions: list[str]):
    """(sequence, pooled) for each caption exactly as the pipeline encodes it, and the zero rows' count."""
    with torch.no_grad():
        sequence, _, pooled, _ = pipe.encode_prompt(captions, None, None, device="cpu",
                                                    do_classifier_free_guidance=False)
    clip_tokens = pipe.tokenizer.model_max_length
    padding = sequence[:, clip_tokens:]
    assert torch.count_nonzero(padding) == 0, "the context past CLIP's tokens should be T5's zero padding"
    return sequence[:, : clip_tokens + 1], pooled, padding.shape[1]


def encoded_pool(vae, size: int, generator, row_of: dict[str, int]):
    """`size` drawn images encoded once (the VAE is frozen): posterior mean, std and caption row.

    Encoding costs more than a training step on the CPU; a fresh posterior sample each
    time an image is picked keeps the VAE's own noise in the data.
    """
    means, stds, rows = [], [], []
    with torch.no_grad():
        for start in range(0, size, 256):
            images, specs = draw_batch(None, min(256, size - start), SD_IMAGE_SIZE, generator)
            posterior = vae.encode(images).latent_dist
            means.append(posterior.mean)
            stds.append(posterior.std)
            rows.append(torch.tensor([row_of[s.caption] for s in specs]))
    return torch.cat(means), torch.cat(stds), torch.cat(rows)


def train(args) -> dict:
    from diffusers_tui.engine.demo.train import EMPTY_CAPTION_RATE

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    transformer = build_transformer()
    pipe = build_pipeline(transformer)
    captions = [s.caption for s in all_specs()] + [""]
    row_of = {caption: row for row, caption in enumerate(captions)}
    context, pooled, zero_rows = caption_embeddings(pipe, captions)
    vae, scaling = pipe.vae, pipe.vae.config.scaling_factor

    training_copy = copy.deepcopy(transformer).train()
    training_copy.set_attn_processor(RepeatedTokenAttention(zero_rows))
    optimizer = torch.optim.AdamW(training_copy.parameters(), lr=args.lr, weight_decay=1e-2)
    ema = EMA(training_copy, args.ema)
    plan = StepPlan(args.steps, args.minutes)
    pool_mean, pool_std, pool_rows = encoded_pool(vae, args.pool, generator, row_of)
    started, step, losses = time.perf_counter(), 0, []
    while not plan.done(step):
        picks = torch.randint(len(pool_rows), (args.batch,), generator=generator)
        noise = torch.randn(pool_mean[picks].shape, generator=generator)
        latents = (pool_mean[picks] + pool_std[picks] * noise) * scaling
        rows = pool_rows[picks]
        dropped = torch.rand(len(rows), generator=generator) < EMPTY_CAPTION_RATE
        rows = torch.where(dropped, torch.full_like(rows, len(captions) - 1), rows)
        # SD3's logit-normal time sampling, with a share of uniform draws so the few-step ends are seen too.
        sigma = torch.sigmoid(torch.randn(len(rows), generator=generator))
        uniform = torch.rand(len(rows), generator=generator) < 0.2
        sigma = torch.where(uniform, torch.rand(len(rows), generator=generator), sigma)
        noise = torch.randn(latents.shape, generator=generator)
        s = sigma[:, None, None, None]
        noisy = (1 - s) * latents + s * noise
        pred = training_copy(hidden_states=noisy, timestep=sigma * 1000, encoder_hidden_states=context[rows],
                             pooled_projections=pooled[rows]).sample
        loss = F.mse_loss(pred, noise - latents)
        apply_step(optimizer, loss, training_copy.parameters(), args.lr, plan.lr_scale(step))
        ema.update(training_copy)
        step += 1
        losses.append(loss.item())
        if step % 100 == 0 or step == plan.total:
            print(f"flow step {step}/{plan.total} loss {sum(losses[-100:]) / len(losses[-100:]):.4f} "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
        if step % args.checkpoint_every == 0 or plan.done(step):
            record = _save(args, pipe, training_copy, ema, step, plan.total, time.perf_counter() - started)
    return record


def _save(args, pipe, training_copy, ema: EMA, step: int, planned: int | None, seconds: float) -> dict:
    averaged = copy.deepcopy(training_copy)
    ema.copy_to(averaged)
    pipe.transformer.load_state_dict(averaged.state_dict())
    folder = args.out / "demo-flow"
    pipe.save_pretrained(folder, safe_serialization=True)
    shutil.copytree(DEMO_SD / "taesd", folder / "taesd", dirs_exist_ok=True)  # same VAE, same latents
    record = {"seed": args.seed, "steps": step, "planned_steps": planned, "batch": args.batch, "lr": args.lr,
              "ema": args.ema, "pool": args.pool, "shift": FLOW_SHIFT, "seconds": round(seconds), "device": "cpu",
              "threads": torch.get_num_threads(), "reused": ["vae", "taesd", "text_encoder (with identity projection)"]}
    (folder / "training.json").write_text(json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=60.0, help="time budget when --steps is not given")
    parser.add_argument("--steps", type=int, help="exact step count (overrides --minutes)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pool", type=int, default=24000, help="images drawn and encoded once before training")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    print(json.dumps(train(args)), flush=True)


if __name__ == "__main__":
    main()

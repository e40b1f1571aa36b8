"""Train the two built-in demo models from scratch on the procedural shapes dataset.

    python -m diffusers_tui.engine.demo.train --out DIR [--device cuda] [--minutes 5]

Writes `DIR/demo-sd` (Stable Diffusion layout: tokenizer, CLIP text encoder, UNet,
AutoencoderKL, scheduler, and `taesd/`, its tiny preview decoder: see train_preview) and `DIR/demo-ddpm` (pixel-space UNet2DModel + DDPMScheduler),
each with a `training.json` that records the seed, steps and losses. Seeded; pass the
step counts from a `training.json` back with --vae-steps/--unet-steps/--ddpm-steps to
repeat a run step for step.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusers_tui.engine.demo.shapes import all_specs, caption_words, draw_batch

SD_IMAGE_SIZE = 64
DDPM_IMAGE_SIZE = 32
TOKEN_LENGTH = 16
EMPTY_CAPTION_RATE = 0.1  # classifier-free guidance needs the model to know "no caption"


def build_tokenizer():
    """A CLIP BPE tokenizer whose vocabulary spells every caption word as one token."""
    from transformers import CLIPTokenizer

    printable = [chr(i) for i in range(33, 127)]
    vocab: dict[str, int] = {}
    for symbol in printable + [c + "</w>" for c in printable]:
        vocab.setdefault(symbol, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in caption_words():
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        joined = pieces[0]
        for piece in pieces[1:]:
            if (joined, piece) not in merges:
                merges.append((joined, piece))
            joined += piece
            vocab.setdefault(joined, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    # transformers 5 ignores vocab_file/merges_file here; pass the objects (see NOTES).
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=TOKEN_LENGTH)


def build_sd_components(tokenizer):
    """The untrained Stable Diffusion layout components, sized to train in minutes."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=SD_IMAGE_SIZE,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=16,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=256,
        num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=TOKEN_LENGTH,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    unet = UNet2DConditionModel(
        sample_size=SD_IMAGE_SIZE // 4, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=16,
    )
    # The Stable Diffusion 1.x noise schedule, so every registry scheduler applies as-is.
    # Shipped with DPM++ 2M: PLMS (SD 1.5's own) got green wrong in 6 of 50 demo cases.
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        num_train_timesteps=1000, steps_offset=1,
    )
    return vae, text_encoder, unet, scheduler


def build_ddpm_components(beta_schedule: str = "linear", prediction_type: str = "v_prediction"):
    from diffusers import DDPMScheduler, UNet2DModel

    unet = UNet2DModel(
        sample_size=DDPM_IMAGE_SIZE, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"), norm_num_groups=16,
    )
    # DDPM's own linear schedule, as google/ddpm-cat-256 uses. The cosine schedule
    # (Nichol & Dhariwal 2021) did no better here at equal training.
    # v-prediction: at high noise levels the target is mostly the clean image, so the model
    # learns the palette colours directly; epsilon-prediction left them drifting (38% plausible).
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule,
                              prediction_type=prediction_type)
    return unet, scheduler


def training_target(prediction_type: str, images, noise, a, s):
    """What the UNet learns to output for x_t = a * images + s * noise."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return a * noise - s * images
    return images  # "sample"


class StepPlan:
    """Fixes a phase's total step count: given, or fitted to a time budget after warm-up."""

    WARMUP = 10  # first steps are slow (allocator, kernel autotuning): not timed
    TIMED = 30

    def __init__(self, steps: int | None, minutes: float, hard_cap_minutes: float | None = None):
        self.total = steps
        self.minutes = minutes
        self.hard_cap_s = hard_cap_minutes * 60 if hard_cap_minutes else None
        self.started = time.perf_counter()
        self.timed_from = self.started

    def done(self, step: int) -> bool:
        if self.total is None and step == self.WARMUP:
            self.timed_from = time.perf_counter()
        if self.total is None and step == self.WARMUP + self.TIMED:
            now = time.perf_counter()
            per_step = (now - self.timed_from) / self.TIMED
            remaining = self.minutes * 60 - (now - self.started)
            self.total = step + max(1, int(remaining / per_step))
        if self.hard_cap_s is not None and time.perf_counter() - self.started > self.hard_cap_s:
            self.total = step  # out of time (a shared machine slowed down): stop and save
        return self.total is not None and step >= self.total

    def lr_scale(self, step: int) -> float:
        total = self.total or 10**9
        warm = min(1.0, (step + 1) / 100)
        return warm * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


class EMA:
    """Exponential moving average of a model's weights; sampling uses the average.

    The average starts at the initial weights, which keep a weight of decay**steps in
    it (12% after 2,000 steps at 0.999): enough to tint every sample. `copy_to` divides
    that share out again, the same bias correction Adam applies to its moments.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.steps = 0
        self.initial = [p.detach().clone() for p in model.parameters()]
        self.shadow = [p.detach().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach() for p in model.parameters()], 1 - self.decay)
        self.steps += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        initial_share = self.decay**self.steps
        for shadow, initial, p in zip(self.shadow, self.initial, model.parameters()):
            p.copy_((shadow - initial_share * initial) / (1 - initial_share))


def _set_lr(optimizer, base_lr: float, scale: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base_lr * scale


def apply_step(optimizer, loss, parameters, base_lr: float, lr_scale: float) -> None:
    """One optimiser step at the scheduled learning rate, gradients clipped to norm 1."""
    _set_lr(optimizer, base_lr, lr_scale)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()


def train_vae(vae, device, generator, plan: StepPlan, batch: int, log) -> None:
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    step = 0
    while not plan.done(step):
        images, _ = draw_batch(None, batch, SD_IMAGE_SIZE, generator, device)
        posterior = vae.encode(images).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        loss = F.mse_loss(recon, images) + 1e-6 * posterior.kl().mean()
        _set_lr(optimizer, 1e-3, plan.lr_scale(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        log("vae", step, plan.total, loss.item())


def train_sd(out: Path, device, seed: int, args, log) -> dict:
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    tokenizer = build_tokenizer()
    vae, text_encoder, unet, scheduler = build_sd_components(tokenizer)
    vae.to(device).train()
    vae_plan = StepPlan(args.vae_steps, args.minutes * 0.25)
    train_vae(vae, device, generator, vae_plan, args.vae_batch, log)
    vae.eval().requires_grad_(False)

    with torch.no_grad():
        images, _ = draw_batch(None, 512, SD_IMAGE_SIZE, generator, device)
        latents = vae.encode(images).latent_dist.mode()
        scaling_factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling_factor)

    specs = all_specs()
    captions = [s.caption for s in specs] + [""]
    ids = tokenizer(captions, padding="max_length", max_length=TOKEN_LENGTH,
                    truncation=True, return_tensors="pt").input_ids.to(device)
    caption_row = {caption: row for row, caption in enumerate(captions)}

    text_encoder.to(device).train()
    unet.to(device).train()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    ema_unet, ema_text = EMA(unet, args.ema), EMA(text_encoder, args.ema)
    alphas_cumprod = scheduler.alphas_cumprod.to(device)
    plan = StepPlan(args.unet_steps, args.minutes * 0.75)
    step = 0
    while not plan.done(step):
        images, batch_specs = draw_batch(None, args.batch, SD_IMAGE_SIZE, generator, device)
        with torch.no_grad():
            latents = vae.encode(images).latent_dist.sample() * scaling_factor
        rows = torch.tensor([caption_row[s.caption] for s in batch_specs], device=device)
        drop = torch.rand(len(rows), generator=generator).to(device) < EMPTY_CAPTION_RATE
        rows = torch.where(drop, torch.full_like(rows, len(captions) - 1), rows)
        noise = torch.randn(latents.shape, generator=generator).to(device)
        t = torch.randint(0, 1000, (len(rows),), generator=generator).to(device)
        a = alphas_cumprod[t].sqrt()[:, None, None, None]
        s = (1 - alphas_cumprod[t]).sqrt()[:, None, None, None]
        encoder_states = text_encoder(ids[rows])[0]
        pred = unet(a * latents + s * noise, t, encoder_states).sample
        loss = F.mse_loss(pred, noise)
        apply_step(optimizer, loss, params, args.lr, plan.lr_scale(step))
        ema_unet.update(unet)
        ema_text.update(text_encoder)
        step += 1
        log("sd-unet", step, plan.total, loss.item())

    ema_unet.copy_to(unet)
    ema_text.copy_to(text_encoder)
    pipe = StableDiffusionPipeline(
        vae=vae.cpu(), text_encoder=text_encoder.cpu().eval(), tokenizer=tokenizer,
        unet=unet.cpu().eval(), scheduler=scheduler, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out / "demo-sd", safe_serialization=True)
    record = {"seed": seed, "vae_steps": vae_plan.total, "unet_steps": plan.total,
              "batch": args.batch, "vae_batch": args.vae_batch, "lr": args.lr,
              "ema": args.ema, "scaling_factor": scaling_factor, "device": str(device)}
    (out / "demo-sd" / "training.json").write_text(json.dumps(record, indent=2))
    return record


def train_ddpm(out: Path, device, seed: int, args, log) -> dict:
    torch.manual_seed(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    unet, scheduler = build_ddpm_components(args.ddpm_schedule, args.ddpm_prediction)
    if args.resume:
        from diffusers import UNet2DModel

        unet = UNet2DModel.from_pretrained(args.resume / "demo-ddpm" / "unet")
    unet.to(device).train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-2)
    ema = EMA(unet, args.ema)
    alphas_cumprod = scheduler.alphas_cumprod.to(device)
    plan = StepPlan(args.ddpm_steps, args.minutes, args.max_minutes)
    step = 0
    while not plan.done(step) and step != args.stop_after:
        images, _ = draw_batch(None, args.batch, DDPM_IMAGE_SIZE, generator, device)
        noise = torch.randn(images.shape, generator=generator).to(device)
        t = torch.randint(0, 1000, (len(images),), generator=generator).to(device)
        a = alphas_cumprod[t].sqrt()[:, None, None, None]
        s = (1 - alphas_cumprod[t]).sqrt()[:, None, None, None]
        target = training_target(args.ddpm_prediction, images, noise, a, s)
        loss = F.mse_loss(unet(a * images + s * noise, t).sample, target)
        apply_step(optimizer, loss, unet.parameters(), args.lr, plan.lr_scale(step))
        ema.update(unet)
        step += 1
        log("ddpm", step, plan.total, loss.item())
        if step % args.checkpoint_every == 0:
            # A long CPU run can be judged (and stopped) from its latest checkpoint.
            _save_ddpm(out, unet, ema, scheduler, step, seed, args, device, plan.total)
    return _save_ddpm(out, unet, ema, scheduler, step, seed, args, device, plan.total)


def _save_ddpm(out: Path, unet, ema: "EMA", scheduler, step: int, seed: int, args, device,
               planned_steps: int | None) -> dict:
    from diffusers import DDPMPipeline

    averaged = copy.deepcopy(unet).cpu()
    ema.copy_to(averaged)
    DDPMPipeline(unet=averaged.eval(), scheduler=scheduler).save_pretrained(
        out / "demo-ddpm", safe_serialization=True)
    # planned_steps fixes the learning-rate schedule; a checkpoint stops before it ends.
    record = {"seed": seed, "ddpm_steps": step, "planned_steps": planned_steps, "schedule": args.ddpm_schedule,
              "prediction_type": args.ddpm_prediction,
              "resumed_from": _previous_record(args.resume, "demo-ddpm"), "batch": args.batch,
              "lr": args.lr, "ema": args.ema, "device": str(device)}
    (out / "demo-ddpm" / "training.json").write_text(json.dumps(record, indent=2))
    return record


def _previous_record(resume: Path | None, model: str) -> dict | None:
    if resume is None:
        return None
    return json.loads((resume / model / "training.json").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the models into")
    parser.add_argument("--only", choices=["sd", "preview", "ddpm", "both"], default="both",
                        help="sd trains demo-sd and then its preview decoder; preview trains only the decoder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="time budget per model when no step counts are given")
    parser.add_argument("--vae-steps", type=int, help="exact VAE steps (overrides --minutes)")
    parser.add_argument("--unet-steps", type=int, help="exact demo-sd UNet steps")
    parser.add_argument("--ddpm-steps", type=int, help="exact demo-ddpm steps")
    parser.add_argument("--ddpm-schedule", default="linear",
                        choices=["squaredcos_cap_v2", "linear"])
    parser.add_argument("--ddpm-prediction", default="v_prediction",
                        choices=["v_prediction", "epsilon", "sample"])
    parser.add_argument("--checkpoint-every", type=int, default=500,
                        help="demo-ddpm: save the averaged weights every this many steps")
    parser.add_argument("--stop-after", type=int, metavar="N",
                        help="demo-ddpm: stop and save after N steps (the schedule still plans --ddpm-steps)")
    parser.add_argument("--max-minutes", type=float,
                        help="demo-ddpm: stop and save after this long even if steps remain")
    parser.add_argument("--resume", type=Path,
                        help="continue demo-ddpm from the weights in this folder (a second stage)")
    parser.add_argument("--preview-steps", type=int, default=1500, help="preview decoder training steps")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--vae-batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (one per process avoids oversubscription)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(phase: str, step: int, total: int | None, loss: float) -> None:
        if step % 200 == 0 or step == total:
            print(f"{phase} step {step}/{total} loss {loss:.4f} "
                  f"{time.perf_counter() - started:.0f}s", flush=True)

    if args.only in ("sd", "both"):
        print(json.dumps(train_sd(args.out, args.device, args.seed, args, log)), flush=True)
    if args.only in ("sd", "preview", "both"):
        from diffusers_tui.engine.demo.train_preview import train_preview

        print(json.dumps(train_preview(args.out, args.device, args.seed, args, log)), flush=True)
    if args.only in ("ddpm", "both"):
        print(json.dumps(train_ddpm(args.out, args.device, args.seed, args, log)), flush=True)


if __name__ == "__main__":
    main()

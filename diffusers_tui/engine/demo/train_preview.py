"""Train the demo's tiny preview decoder: an AutoencoderTiny (TAESD format) that imitates its VAE.

    python -m diffusers_tui.engine.demo.train --out DIR --only preview [--preview-steps N]

Reads the trained `DIR/demo-sd` (or the built-in one) and writes `DIR/demo-sd/taesd`.
The decoder learns from what a run previews, not only from clean pictures: the inputs are
the demo UNet's own denoised estimates at random noise levels and guidance scales, plus
clean latents and noisy samples, and each target is the demo VAE's full decode of that
same latent. So the decoder is judged, and trained, on exactly what the live pane shows.
The encoder learns the VAE's latents back from pictures, so the folder is a whole TAESD.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusers_tui.engine.demo.shapes import all_specs, draw_batch

#: Decoder size: 16x16 latents up to 64x64 pixels in two doublings. 40 k weights, about
#: 2.3 ms a frame on one CPU thread (the demo VAE's decoder: 20 ms). Twice the channels
#: scored 0.2 dB lower on the held-out latents at 2x the cost.
CHANNELS = (16, 16, 16)
DECODER_BLOCKS = (2, 2, 1)
ENCODER_BLOCKS = (1, 1, 1)
#: What share of the inputs are denoised estimates, clean latents, and noisy samples.
MIX = {"x0": 0.6, "clean": 0.2, "noisy": 0.2}
DATASET_BATCHES = 128
BATCH = 32  # on two CPU cores: about 0.7 s a training step, 30 ms a dataset picture


def build_preview_decoder():
    from diffusers import AutoencoderTiny

    # scaling_factor 1: like every published TAESD, it reads the latents the UNet sees.
    return AutoencoderTiny(
        encoder_block_out_channels=CHANNELS, decoder_block_out_channels=CHANNELS,
        num_encoder_blocks=ENCODER_BLOCKS, num_decoder_blocks=DECODER_BLOCKS,
        latent_channels=4, scaling_factor=1.0,
    )


@torch.no_grad()
def preview_dataset(pipe, generator, device, batches: int = DATASET_BATCHES):
    """(pictures, their latents, latents as a run previews them, full decodes of those)."""
    vae, unet, scale = pipe.vae, pipe.unet, pipe.vae.config.scaling_factor
    alphas = pipe.scheduler.alphas_cumprod.to(device)
    captions = [spec.caption for spec in all_specs()]
    ids = pipe.tokenizer(captions + [""], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids.to(device)
    states = pipe.text_encoder(ids)[0]
    caption_row = {caption: row for row, caption in enumerate(captions)}
    pictures, encoded, inputs, targets = [], [], [], []
    for _ in range(batches):
        images, specs = draw_batch(None, BATCH, 64, generator, device)
        clean = vae.encode(images).latent_dist.mode() * scale
        t = torch.randint(0, 1000, (BATCH,), generator=generator).to(device)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        noisy = a * clean + s * torch.randn(clean.shape, generator=generator).to(device)
        rows = torch.tensor([caption_row[spec.caption] for spec in specs], device=device)
        conditioned = unet(noisy, t, states[rows]).sample
        unconditioned = unet(noisy, t, states[-1:].expand(BATCH, -1, -1)).sample
        guidance = 1 + 7 * torch.rand((BATCH, 1, 1, 1), generator=generator).to(device)
        noise = unconditioned + guidance * (conditioned - unconditioned)
        x0 = (noisy - s * noise) / a
        pick = torch.rand((BATCH, 1, 1, 1), generator=generator).to(device)
        latents = torch.where(pick < MIX["x0"], x0, torch.where(pick < MIX["x0"] + MIX["clean"], clean, noisy))
        pictures.append(images.cpu())
        encoded.append(clean.cpu())
        inputs.append(latents.cpu())
        targets.append(vae.decode(latents / scale).sample.clamp(-1, 1).cpu())
    return torch.cat(pictures), torch.cat(encoded), torch.cat(inputs), torch.cat(targets)


def train_preview(out: Path, device, seed: int, args, log) -> dict:
    """Train and save `out/demo-sd/taesd`; returns its training record."""
    from diffusers import StableDiffusionPipeline

    source = out / "demo-sd"
    if not (source / "model_index.json").is_file():
        source = Path(__file__).parent / "demo-sd"
    torch.manual_seed(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    pipe = StableDiffusionPipeline.from_pretrained(source, safety_checker=None, requires_safety_checker=False).to(device)
    pipe.set_progress_bar_config(disable=True)
    pictures, clean_latents, latents, decodes = preview_dataset(pipe, generator, device)
    held_out = len(latents) // 8  # the last eighth is never trained on: the record's error is on it
    tiny = build_preview_decoder().to(device).train()
    optimizer = torch.optim.AdamW(tiny.parameters(), lr=2e-3, weight_decay=0.0)
    steps = args.preview_steps
    for step in range(steps):
        index = torch.randint(held_out, len(latents), (BATCH,), generator=generator)
        decoded = tiny.decode(latents[index].to(device)).sample
        encoded = tiny.encode(pictures[index].to(device)).latents
        # Two thirds L2 (what PSNR measures), a third L1 (keeps the edges of the shapes sharp).
        decode_loss = F.mse_loss(decoded, decodes[index].to(device)) + 0.5 * F.l1_loss(decoded, decodes[index].to(device))
        loss = decode_loss + 0.1 * F.mse_loss(encoded, clean_latents[index].to(device))
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + torch.cos(torch.tensor(step / steps * torch.pi))).item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        log("preview", step + 1, steps, loss.item())
    tiny.eval()
    with torch.no_grad():
        predicted = tiny.decode(latents[:held_out].to(device)).sample.clamp(-1, 1).cpu()
    mse = float(((predicted - decodes[:held_out]) / 2).pow(2).mean())
    folder = out / "demo-sd" / "taesd"
    tiny.cpu().save_pretrained(folder, safe_serialization=True)
    record = {"seed": seed, "steps": steps, "batch": BATCH, "dataset": len(latents), "mix": MIX,
              "held_out_psnr_db": round(10 * torch.log10(torch.tensor(1 / mse)).item(), 2),
              "imitates": "demo-sd/vae decoder", "device": str(device)}
    (folder / "training.json").write_text(json.dumps(record, indent=2))
    return record

"""How close each A1111-named sampler and schedule type runs to what A1111 runs, on the demo model.

For every registry sampler that bears an A1111 name, and every schedule type it offers here, the
engine's run (the public Engine API, as the app and `generate` make it) is compared with
`kdiffusion_reference`: k-diffusion's published sampler algorithms and A1111's schedules, stepping
the same UNet with the same prompt embeddings and A1111's CPU noise. The figure is the RMSE of the
two decoded images in 0-255 units; the goal is <= 1. For scale, Euler against Heun is printed too.

    python benchmarks/a1111_parity.py [--steps 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.kdiffusion_reference import K_SAMPLERS, TIMESTEP_SAMPLERS, run_reference
from diffusers_tui.engine import Engine
from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine.sampling import registry

GOAL = 1.0
PROMPT = "a red circle on a blue background"
GUIDANCE = 7.0
REFERENCE_SCHEDULES = {"Automatic", "Uniform", "Karras", "Exponential", "Beta", "SGM Uniform"}


class DemoReference:
    """The demo pipeline's UNet as A1111's denoiser sees it: CFG on the same prompt embeddings."""

    def __init__(self, engine: Engine, model: str = "demo"):
        self.engine, self.model = engine, model
        self.pipe = engine.loaded_model(model).pipeline

    def eps(self, cond, uncond, guidance):
        unet = self.pipe.unet

        def guided(x, t):
            out = unet(torch.cat([x, x]), t.reshape(1).expand(2), encoder_hidden_states=torch.cat([cond, uncond])).sample
            out_cond, out_uncond = out.chunk(2)
            return out_uncond + guidance * (out_cond - out_uncond)
        return guided

    @torch.inference_mode()
    def image(self, sampler: str, schedule: str, steps: int, seed: int, width: int, height: int) -> np.ndarray:
        pipe = self.pipe
        cond, uncond = pipe.encode_prompt(PROMPT, "cpu", 1, True, None)
        shape = (1, pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
        alphas_cumprod = pipe.scheduler.alphas_cumprod
        latent = run_reference(sampler, schedule, steps, self.eps(cond, uncond, GUIDANCE), alphas_cumprod, shape, seed)
        decoded = pipe.vae.decode(latent / pipe.vae.config.scaling_factor).sample
        return _pixels(pipe.image_processor.postprocess(decoded, output_type="pil")[0])

    def ours(self, sampler: str, schedule: str, steps: int, seed: int) -> np.ndarray:
        result = self.engine.run(GenerationRequest(prompt=PROMPT, model=self.model, scheduler=sampler,
                                                   schedule=schedule, steps=steps, guidance=GUIDANCE, seed=seed))
        return _pixels(result.image)


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def parity_rows(steps: int = 20, seed: int = 1, engine: Engine | None = None, schedules=None, names=None):
    """(sampler, schedule, RMSE or None, note) for every A1111-named sampler and schedule offered here
    (those in `schedules` only, when given), or for the entries `names` (diffusers' classes too, against
    the A1111 sampler they are named after)."""
    reference = DemoReference(engine or Engine())
    width, height = reference.engine.load("demo").native_size
    rows = []
    for entry in registry.REGISTRY:
        if (names is None and not entry.a1111) or (names is not None and entry.name not in names):
            continue
        a1111_name = entry.name.removesuffix(" (diffusers)")
        for schedule in entry.schedules:
            if schedules is not None and schedule not in schedules:
                continue
            has_reference = (a1111_name in K_SAMPLERS and schedule in REFERENCE_SCHEDULES) or (
                a1111_name in TIMESTEP_SAMPLERS and schedule == "Automatic")
            if not has_reference:
                rows.append((entry.name, schedule, None, entry.parity_note(schedule) or "no reference written"))
                continue
            ours = reference.ours(entry.name, schedule, steps, seed)
            theirs = reference.image(a1111_name, schedule, steps, seed, width, height)
            rows.append((entry.name, schedule, rmse(ours, theirs), entry.parity_note(schedule)))
    scale = rmse(reference.ours("Euler", "Automatic", steps, seed), reference.ours("Heun", "Automatic", steps, seed))
    return rows, scale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows, scale = parity_rows(args.steps, args.seed)
    print(f"A1111 parity on the demo: {args.steps} steps, CFG {GUIDANCE:g}, seed {args.seed}; "
          f"RMSE of the decoded images (0-255), goal <= {GOAL:g}; Euler against Heun is {scale:.1f}")
    print(f"{'sampler':<14} {'schedule':<12} {'RMSE':>7}  verdict  note")
    missed = 0
    for sampler, schedule, value, note in rows:
        if value is None:
            print(f"{sampler:<14} {schedule:<12} {'-':>7}  -        {note}")
            continue
        met = value <= GOAL
        missed += not met and not note
        print(f"{sampler:<14} {schedule:<12} {value:7.2f}  {'met' if met else 'MISSED':<7}  {note if not met else ''}")
    print(f"{missed} entries miss the goal without a note saying why")
    return 0


if __name__ == "__main__":
    sys.exit(main())

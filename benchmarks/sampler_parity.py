"""How close each A1111- and ComfyUI-named engine sampler draws to what that tool's own sampler code draws."""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import tool_sources  # noqa: E402
from diffusers_tui.engine import Engine  # noqa: E402
from diffusers_tui.engine.request import GenerationRequest  # noqa: E402
from diffusers_tui.engine.sampling import registry  # noqa: E402
from diffusers_tui.engine.sampling.sigma import catalogue  # noqa: E402
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas  # noqa: E402

GOAL = 1.0
PROMPT = "a red circle on a blue background"
#: Each tool's default CFG scale (A1111's txt2img, ComfyUI's KSampler node).
GUIDANCE = {"A1111": 7.0, "ComfyUI": 6.0}
NOISE = {"A1111": "A1111 CPU", "ComfyUI": "ComfyUI"}
#: A1111 1.10 sd_samplers_kdiffusion.samplers_k_diffusion: the k-diffusion function behind each name and
#: the options A1111 adds; Restart is A1111's own sd_samplers_extra.restart_sampler.
A1111_FUNCTIONS = {
    "DPM++ 2M": ("sample_dpmpp_2m", {}), "DPM++ SDE": ("sample_dpmpp_sde", {}),
    "DPM++ 2M SDE": ("sample_dpmpp_2m_sde", {}), "DPM++ 2M SDE Heun": ("sample_dpmpp_2m_sde", {"solver_type": "heun"}),
    "DPM++ 2S a": ("sample_dpmpp_2s_ancestral", {}), "DPM++ 3M SDE": ("sample_dpmpp_3m_sde", {}),
    "Euler a": ("sample_euler_ancestral", {}), "Euler": ("sample_euler", {}), "LMS": ("sample_lms", {}),
    "Heun": ("sample_heun", {}), "DPM2": ("sample_dpm_2", {}), "DPM2 a": ("sample_dpm_2_ancestral", {}),
    "DPM fast": ("sample_dpm_fast", {}), "DPM adaptive": ("sample_dpm_adaptive", {}),
    "Restart": ("restart_sampler", {}),
}
#: A1111's own samplers (--a1111 DIR): sd_samplers_timesteps_impl's functions, and sd_samplers_lcm's.
A1111_OWN = {"DDIM": "ddim", "DDIM CFG++": "ddim_cfgpp", "PLMS": "plms", "UniPC": "unipc", "LCM": "sample_lcm"}
#: Why a cell misses, where the benchmark has found out (shown only on a miss): (tool, sampler) -> reason.
KNOWN = {
    ("ComfyUI", "dpmpp_2s_ancestral_cfg_pp"): "the engine follows ComfyUI's newer form (guidance added after the "
                                               "step; its second call for the unguided estimate only): checkouts "
                                               "from before late 2025 run the older one",
}
EPILOG = f"""The references are the tools' own sampler code, from checkouts:
  --kdiffusion DIR   DIR/k_diffusion/sampling.py (A1111 pins k-diffusion 0.0.16 = ab527a9; HEAD's sampling.py is
                     the same). Get it with: {tool_sources.KDIFFUSION_HELP}
  --a1111 DIR        DIR/modules: A1111's Restart (sd_samplers_extra.py), DDIM, DDIM CFG++, PLMS and UniPC
                     (sd_samplers_timesteps_impl.py, models/diffusion/uni_pc) and LCM (sd_samplers_lcm.py),
                     with --kdiffusion. Get them with:
                     {tool_sources.A1111_HELP}
  --comfyui DIR      DIR/comfy/k_diffusion, comfy/extra_samplers, comfy/samplers.py... Get them with:
                     {tool_sources.COMFYUI_HELP}
Without --kdiffusion the A1111 names fall back to benchmarks/kdiffusion_reference.py where it has the
sampler; without --comfyui the ComfyUI ids have no reference. σ lists come from the engine's schedules.py
(checked against both tools) except ComfyUI's KSampler schedules, which come from the checkout.
Figure: RMSE (0-255) of the two decoded 64x64 images; goal <= {GOAL:g} in every cell."""


class Demo:
    """One demo model: its network called on a [cond, uncond] batch, its decoder, and the engine's run."""

    def __init__(self, engine: Engine, model: str):
        self.engine, self.model = engine, model
        self.width, self.height = engine.load(model).native_size
        self.pipe = engine.loaded_model(model).pipeline
        self.config = dict(engine.loaded_model(model).original_scheduler_config)
        self.flow = registry.is_flow_config(self.config)
        pipe = self.pipe
        with torch.inference_mode():
            if self.flow:  # SD3: sequence and pooled embeddings, negative prompt "" as the engine passes it
                cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(PROMPT, None, None, device="cpu",
                                                                         negative_prompt="")
                self.pooled = torch.cat([pooled, uncond_pooled])
                channels = pipe.transformer.config.in_channels
            else:
                cond, uncond = pipe.encode_prompt(PROMPT, "cpu", 1, True, "")
                channels = pipe.unet.config.in_channels
        self.context = torch.cat([cond, uncond])
        factor = pipe.vae_scale_factor
        self.shape = (1, channels, self.height // factor, self.width // factor)

    def net(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The raw network output (ε or v) for a [cond, uncond] batch of inputs x at timesteps t."""
        with torch.inference_mode():
            if self.flow:
                return self.pipe.transformer(hidden_states=x, timestep=t, encoder_hidden_states=self.context,
                                             pooled_projections=self.pooled).sample
            return self.pipe.unet(x, t, encoder_hidden_states=self.context).sample

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """The picture as the pipeline decodes its own final latent."""
        pipe, vae = self.pipe, self.pipe.vae
        with torch.inference_mode():
            latent = latent.float() / vae.config.scaling_factor + (getattr(vae.config, "shift_factor", None) or 0.0)
            images = pipe.image_processor.postprocess(vae.decode(latent).sample, output_type="np")
        return _pixels(pipe.numpy_to_pil(images)[0])

    def ours(self, entry, schedule: str, steps: int, seed: int) -> np.ndarray:
        result = self.engine.run(GenerationRequest(prompt=PROMPT, model=self.model, scheduler=entry.name,
                                                   schedule=schedule, steps=steps, guidance=GUIDANCE[entry.tool],
                                                   seed=seed, noise=NOISE[entry.tool]))
        if result.image is None:
            raise RuntimeError(result.stopped or "the engine returned no image")
        return _pixels(result.image)


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


# ----- A1111: k-diffusion's CompVisDenoiser and sampler, A1111's CFG, noise and arguments -----


class A1111Reference:
    def __init__(self, demo: Demo, kdiffusion_dir: str | None, a1111_dir: str | None):
        self.demo = demo
        self.alphas_cumprod = tool_sources.a1111_alphas_cumprod(demo.config)
        self.kd = tool_sources.load_kdiffusion(kdiffusion_dir) if kdiffusion_dir else None
        self.extra = tool_sources.load_a1111_extra(a1111_dir) if a1111_dir else None
        self.own = tool_sources.load_a1111_own(a1111_dir) if a1111_dir and self.kd else None
        self.label = "k-diffusion" if self.kd else "kdiffusion_reference"
        if not self.kd:
            from benchmarks import kdiffusion_reference as fallback

            self.fallback = fallback

    def missing(self, named) -> str | None:
        if named.name in A1111_OWN:
            if self.own is None:
                return "no reference: A1111's own code; give --a1111 DIR and --kdiffusion DIR"
            if named.name != "LCM" and not hasattr(self.own.timesteps, A1111_OWN[named.name]):
                return "no reference: this A1111 checkout has no ddim_cfgpp (it came in 1.10)"
            return None
        if named.name not in A1111_FUNCTIONS:
            return f"no k-diffusion function known for A1111's {named.name}"
        if not self.kd and named.name not in self.fallback.K_SAMPLERS:
            return "no reference: not in kdiffusion_reference.py; give --kdiffusion DIR"
        if A1111_FUNCTIONS[named.name][0] == "restart_sampler" and not self.extra:
            return "no reference: A1111's own code (modules/sd_samplers_extra.py); give --a1111 DIR"
        return None

    def latent(self, named, schedule: str, steps: int, seed: int) -> torch.Tensor:
        guidance, demo = GUIDANCE["A1111"], self.demo
        if self.kd is None:
            return self._fallback(named, schedule, steps, seed, guidance)
        if named.name in A1111_OWN:
            return self._own(named, steps, seed, guidance)
        sampling = self.kd.sampling
        model = tool_sources.CompVisModel(demo.net, self.alphas_cumprod)
        denoiser = self.kd.external.CompVisDenoiser(model, quantize=False)
        cfg_denoiser = tool_sources.A1111CFGDenoiser(denoiser, guidance)
        sigmas = self._sigmas(named, schedule, steps, denoiser.sigmas)
        rng = tool_sources.ImageRNG(demo.shape, seed)
        x = rng.next() * sigmas[0]  # KDiffusionSampler.sample: x * sigmas[0] (no SGM noise multiplier)
        function_name, options = A1111_FUNCTIONS[named.name]
        function = getattr(self.extra if function_name == "restart_sampler" else sampling, function_name)
        parameters = inspect.signature(function).parameters
        kwargs = dict(options)
        if "eta" in parameters:
            kwargs["eta"] = 1.0  # opts.eta_ancestral
        if "n" in parameters:
            kwargs["n"] = steps
        if "sigma_min" in parameters:  # DPM fast and adaptive: the model's whole σ range
            kwargs["sigma_min"], kwargs["sigma_max"] = denoiser.sigmas[0].item(), denoiser.sigmas[-1].item()
        if "sigmas" in parameters:
            kwargs["sigmas"] = sigmas
        with tool_sources.a1111_sampling(sampling, rng):
            if named.brownian:  # create_noise_sampler: one tree per image, seeds as a list
                kwargs["noise_sampler"] = sampling.BrownianTreeNoiseSampler(
                    x, sigmas[sigmas > 0].min(), sigmas.max(), seed=[seed])
            return function(cfg_denoiser, x, extra_args={}, disable=True, **kwargs)

    def _own(self, named, steps: int, seed: int, guidance: float) -> torch.Tensor:
        """A1111's DDIM, PLMS, UniPC (CompVisSampler.sample: unit noise, A1111's timesteps) or LCM (its
        denoiser's own σ list, which is what Automatic gives it)."""
        model = tool_sources.CompVisModel(self.demo.net, self.alphas_cumprod)
        rng = tool_sources.ImageRNG(self.demo.shape, seed)
        with tool_sources.a1111_sampling(self.kd.sampling, rng):
            if named.name == "LCM":
                denoiser = self.own.lcm_denoiser(model)
                sigmas = denoiser.get_sigmas(steps)
                x = rng.next() * sigmas[0]
                cfg_denoiser = tool_sources.A1111CFGDenoiser(denoiser, guidance)
                return self.own.sample_lcm(cfg_denoiser, x, sigmas, extra_args={}, disable=True)
            # CompVisSampler.get_timesteps, without the discarded σ (none of these asks for it).
            timesteps = torch.clip(torch.asarray(list(range(0, 1000, 1000 // steps))) + 1, 0, 999)
            function = getattr(self.own.timesteps, A1111_OWN[named.name])
            # UniPC's after_update calls the callback unconditionally.
            kwargs = {"callback": lambda state: None} if named.name == "UniPC" else {}
            cfg_model = tool_sources.A1111TimestepsCFG(model, guidance)
            return function(cfg_model, rng.next(), timesteps, extra_args={}, disable=True, **kwargs)

    def _sigmas(self, named, schedule: str, steps: int, table: torch.Tensor) -> torch.Tensor:
        # The catalogue's σ list (schedules.py; Automatic and the dropped σ as A1111 has them) on A1111's σ table.
        return torch.tensor(catalogue.sigmas_for(named, schedule, ModelSigmas(table.float()), steps),
                            dtype=torch.float32)

    def _fallback(self, named, schedule: str, steps: int, seed: int, guidance: float) -> torch.Tensor:
        ref, demo = self.fallback, self.demo
        model = ref.DiscreteSchedule(self.alphas_cumprod)
        sigmas = self._sigmas(named, schedule, steps, model.sigmas)
        noise = ref.A1111Noise(seed)
        x = noise.initial(demo.shape) * sigmas[0]

        def denoise(x, sigma):
            sigma = torch.as_tensor(sigma, dtype=torch.float32)
            t = model.sigma_to_t(sigma.reshape(1)).expand(2)
            eps = demo.net(torch.cat([x, x]) / (sigma**2 + 1) ** 0.5, t)
            return x - (eps[1:] + (eps[:1] - eps[1:]) * guidance) * sigma

        return ref.K_SAMPLERS[named.name](denoise, x, sigmas, noise)


# ----- ComfyUI: its KSAMPLER path with a model wrapper shaped like CFGGuider and BaseModel -----


class ComfyReference:
    label = "ComfyUI"

    def __init__(self, demo: Demo, comfyui_dir: str | None):
        self.demo = demo
        self.comfyui = tool_sources.load_comfyui(comfyui_dir) if comfyui_dir else None

    def missing(self, named) -> str | None:
        if self.comfyui is None:
            return "no reference: give --comfyui DIR"
        if named.name not in self.comfyui.samplers.SAMPLER_NAMES:
            return f"no reference: {named.name} is not in this checkout's SAMPLER_NAMES (newer than it?)"
        return None

    def _sigmas(self, named, schedule: str, steps: int):
        """(σ list, model_sampling) as ComfyUI builds them for this sampler and schedule."""
        samplers, demo = self.comfyui.samplers, self.demo
        ms = tool_sources.comfy_model_sampling(self.comfyui, demo.config, demo.flow)
        name = named.automatic if schedule == "Automatic" else schedule  # ComfyUI has no Automatic
        if name in samplers.SCHEDULER_HANDLERS:  # KSampler.calculate_sigmas, the dropped σ included
            discard = named.name in samplers.KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS
            sigmas = samplers.calculate_sigmas(ms, name, steps + 1 if discard else steps)
            return (torch.cat([sigmas[:-2], sigmas[-1:]]) if discard else sigmas), ms
        # A schedule node feeds SamplerCustom, which takes its σ list whole.
        table = ModelSigmas.for_flow(float(ms.shift)) if demo.flow else ModelSigmas(ms.sigmas.float())
        return catalogue.schedule_function("ComfyUI", name)(table, steps).float(), ms

    def latent(self, named, schedule: str, steps: int, seed: int) -> torch.Tensor:
        comfyui, demo = self.comfyui, self.demo
        sigmas, ms = self._sigmas(named, schedule, steps)
        latent_image = torch.zeros(demo.shape)
        noise = comfyui.sample.prepare_noise(latent_image, seed)  # torch.manual_seed(seed), CPU randn
        guider = tool_sources.ComfyGuider(comfyui, tool_sources.ComfyBaseModel(demo.net, ms), GUIDANCE["ComfyUI"])
        extra_args = {"model_options": {"transformer_options": {"sample_sigmas": sigmas}}, "seed": seed}
        sampler = comfyui.samplers.sampler_object(named.name)
        return sampler.sample(guider, sigmas, extra_args, None, noise, latent_image, None, True)

    def reason(self, named, schedule: str, steps: int) -> str:
        """What ComfyUI does on this cell that a miss is likely due to (checked where a cell missed)."""
        sigmas, ms = self._sigmas(named, schedule, steps)
        first, top = float(sigmas[0]), float(ms.sigma_max)
        if not self.demo.flow and first < top and not math.isclose(first, top, rel_tol=1e-5):
            # Sampler.max_denoise is false below the model's σ_max: EPS.noise_scaling multiplies by σ0 only.
            return (f"ComfyUI scales the starting noise by σ0 = {first:.4g}, not sqrt(1+σ0²) "
                    f"(max_denoise is false below σ_max {top:.4g})")
        return ""


# ----- the table -----


@dataclass
class Row:
    sampler: str
    schedule: str
    model: str
    reference: str
    values: dict
    note: str = ""
    error: str = ""

    @property
    def worst(self) -> float | None:
        return max(self.values.values()) if len(self.values) and not self.error else None

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        if self.worst is None:
            return "no reference"
        return "met" if self.worst <= GOAL else "MISSED"


def cells(only: str | None, models: list[str], schedules: list[str] | None, tools=("A1111", "ComfyUI")):
    """(registry entry, schedule, model) for every A1111 and ComfyUI sampler; ComfyUI's on demo-flow too."""
    entries = [e for e in registry.REGISTRY if e.tool in tools]
    if only:
        chosen = [e for e in entries if e.name == only] or [e for e in entries if e.name.casefold() == only.casefold()]
        if not chosen:
            raise SystemExit(f"--only: no A1111 or ComfyUI sampler named {only!r}; "
                             f"choose from {', '.join(e.name for e in entries)}")
        entries = chosen
    flow_entries = {e.name: e for e in registry.FLOW_REGISTRY if e.tool == "ComfyUI"}
    for entry in entries:
        for model in models:
            runs = entry
            if model == "demo-flow":
                if entry.tool != "ComfyUI":
                    continue  # A1111 runs no flow models; ComfyUI runs every sampler on them
                if entry.name not in flow_entries:
                    yield entry, None, model  # a row saying the engine has no flow form of it
                    continue
                runs = flow_entries[entry.name]
            for schedule in runs.schedules:
                if schedules is None or schedule in schedules:
                    yield runs, schedule, model


def measure(entry, schedule: str | None, demo: Demo, reference, steps: int, seeds: list[int]) -> Row:
    if schedule is None:
        return Row(entry.name, "-", demo.model, "-", {}, error="the engine offers no flow form of it; "
                                                               "ComfyUI runs every sampler on flow models")
    named = catalogue.sampler(entry.options["sampler"])
    label = "A1111" if entry.tool == "A1111" and named.name in A1111_OWN else reference.label
    row = Row(entry.name, schedule, demo.model, label, {})
    missing = reference.missing(named)
    if missing:
        row.reference, row.note = "-", missing
        return row
    for seed in seeds:
        try:
            latent = reference.latent(named, schedule, steps, seed)
            if not torch.isfinite(latent).all():  # the tool's own run breaks down: nothing to match
                row.values, row.note = {}, f"{reference.label}'s own run is not finite here (seed {seed})"
                return row
            theirs = demo.decode(latent)
            ours = demo.ours(entry, schedule, steps, seed)
        except Exception as error:  # noqa: BLE001 - a cell that cannot run says why and the table goes on
            row.error = f"seed {seed}: {type(error).__name__}: {error}".splitlines()[0][:160]
            return row
        row.values[seed] = rmse(ours, theirs)
    if row.verdict == "MISSED":  # what the catalogue entry, the tool's run and the benchmark know of it
        found = reference.reason(named, schedule, steps) if hasattr(reference, "reason") else ""
        notes = (entry.parity_note(schedule), found, KNOWN.get((entry.tool, entry.name), ""))
        row.note = "; ".join(note for note in notes if note)
    return row


def _format(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_header(seeds, markdown: bool) -> None:
    names = ["sampler", "schedule", "model", "reference", *(f"seed {s}" for s in seeds), "worst", "verdict", "note"]
    if markdown:
        print("| " + " | ".join(names) + " |")
        numeric = range(4, 5 + len(seeds))  # the seeds' and the worst RMSE, right-aligned
        print("|" + "|".join("--:" if i in numeric else "---" for i in range(len(names))) + "|")
    else:
        print(f"{'sampler':<26} {'schedule':<17} {'model':<9} {'reference':<20} "
              + " ".join(f"{'s' + str(s):>6}" for s in seeds) + f" {'worst':>6}  {'verdict':<12}  note")


def print_row(row: Row, seeds, markdown: bool) -> None:
    values = [_format(row.values.get(seed)) for seed in seeds]
    note = row.error or (row.note if row.verdict != "met" else "")
    if markdown:
        print("| " + " | ".join([row.sampler, row.schedule, row.model, row.reference, *values, _format(row.worst),
                                 row.verdict, note.replace("|", "/")]) + " |", flush=True)
    else:
        print(f"{row.sampler:<26} {row.schedule:<17} {row.model:<9} {row.reference:<20} "
              + " ".join(f"{v:>6}" for v in values) + f" {_format(row.worst):>6}  {row.verdict:<12}  {note}",
              flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, what in (("kdiffusion", "k-diffusion: A1111's samplers"), ("a1111", "A1111: its Restart sampler"),
                       ("comfyui", "ComfyUI: its samplers")):
        parser.add_argument(f"--{flag}", metavar="DIR", help=f"a checkout of {what} (see below)")
    parser.add_argument("--only", metavar="NAME", help="one sampler, by its registry name (Euler, euler_ancestral...)")
    parser.add_argument("--tool", choices=["A1111", "ComfyUI"], help="only this tool's samplers")
    parser.add_argument("--schedule", metavar="NAMES", help="only these schedule types, comma-separated")
    parser.add_argument("--model", choices=("demo", "demo-flow"), help="only this model")
    parser.add_argument("--seeds", default="1,42,7", help="comma-separated seeds (default 1,42,7)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    # torchsde warns at every Brownian query at the tree's ends (it rounds them and clamps): both tools run so.
    warnings.filterwarnings("ignore", message="Should have", category=UserWarning)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    models = [args.model] if args.model else ["demo", "demo-flow"]
    schedules = [s.strip() for s in args.schedule.split(",")] if args.schedule else None
    engine, demos, references = Engine(), {}, {}
    print(f"Sampler parity: {args.steps} steps, CFG {GUIDANCE['A1111']:g} (A1111) / {GUIDANCE['ComfyUI']:g} (ComfyUI), "
          f"seeds {', '.join(map(str, seeds))}; RMSE of the decoded images (0-255), goal <= {GOAL:g}", flush=True)
    print_header(seeds, args.markdown)
    rows = []
    tools = (args.tool,) if args.tool else ("A1111", "ComfyUI")
    for entry, schedule, model in cells(args.only, models, schedules, tools):
        if model not in demos:
            demos[model] = Demo(engine, model)
        key = (entry.tool, model)
        if key not in references:
            references[key] = (A1111Reference(demos[model], args.kdiffusion, args.a1111) if entry.tool == "A1111"
                               else ComfyReference(demos[model], args.comfyui))
        rows.append(measure(entry, schedule, demos[model], references[key], args.steps, seeds))
        print_row(rows[-1], seeds, args.markdown)
    if args.markdown:
        print()  # the summary below a Markdown table, not in it
    counts = {v: sum(r.verdict == v for r in rows) for v in ("met", "MISSED", "no reference", "error")}
    unexplained = sum(r.verdict in ("MISSED", "error") and not r.note for r in rows)
    print(f"{len(rows)} cells: {counts['met']} met, {counts['MISSED']} missed, {counts['error']} errors, "
          f"{counts['no reference']} without a reference; {unexplained} missed or failed without a known reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The command line's arguments: every command, its options, and the argparse types they use."""

from __future__ import annotations

import argparse

from diffusers_tui.engine import DEFAULT_PROMPT, GenerationRequest, RequestError, max_threads, parse_size, parse_whole
from diffusers_tui.settings import GRAPHICS


def _size(text: str) -> str:
    """The text, once it reads as a size: settings keep sizes as text ("512x768", "" for native)."""
    try:
        parse_size(text)
    except RequestError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _seed(text: str) -> int | None:
    if text.lower() == "random":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or 'random'") from None


def _whole_number(low: int, high: int | None = None):
    """An argparse type: a whole number from `low` (to `high`), else a one-line error."""
    def parse(text: str) -> int:
        try:
            return parse_whole("value", text, low, high)
        except RequestError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("value: ")) from None
    return parse


_positive = _whole_number(1)
_port = _whole_number(1, 65535)


def _default(top_level: bool, value=None):
    """Shared options default to SUPPRESS after the command: a subcommand's defaults would otherwise
    replace what was given before it (`diffusers-tui --outputs X generate` saving in outputs/)."""
    return value if top_level else argparse.SUPPRESS


def _model_options(parser: argparse.ArgumentParser, top_level: bool) -> None:
    """The model options, accepted before the command and after it (see _default)."""
    def default(value):
        return _default(top_level, value)

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=default(None),
                       help="demo, demo-flow, demo-ddpm, a Hub id in the local cache (org/name), a diffusers folder, "
                            "or a single .safetensors file (default: demo; demo-ddpm for unet)")
    group.add_argument("--config", metavar="DIR", default=default(None),
                       help="for a single-file checkpoint: a local diffusers folder with its configs")
    group.add_argument("--device", default=default(None), help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    group.add_argument("--dtype", default=default(None),
                       help="auto, float32, float16 or bfloat16 (auto on CUDA: bfloat16 for Flux, SD3, Qwen-Image and the like, "
                            "float16 for SD 1.x/SDXL; float32 on the CPU)")
    group.add_argument("--offload", default=default(None), choices=["none", "model", "sequential"],
                       help="move idle parts to the CPU to save GPU memory (CUDA only; default: none)")
    group.add_argument("--vae", default=default(None), choices=["full", "sliced", "tiled"],
                       help="how the VAE decodes: sliced decodes a batch one image at a time, tiled also cuts "
                            "each image into overlapping tiles, so large sizes fit (default: full)")
    group.add_argument("--allow-pickle", action="store_true", default=default(False),
                       help="also load pickle weights (.bin/.ckpt), which can run code: trusted files only")
    group.add_argument("--taesd-folder", metavar="DIR", default=default(None),
                       help="a TAESD preview decoder folder, or a folder of them by repo name (taesd, taesdxl, ...)")
    group.add_argument("--lora-dir", dest="lora_dir", action="append", metavar="DIR", default=default(None),
                       help="a folder of LoRA files, where --lora NAME finds NAME.safetensors (repeatable; "
                            "default: the lora_dir setting)")
    group.add_argument("--embeddings-dir", dest="embeddings_dir", action="append", metavar="DIR",
                       default=default(None),
                       help="a folder of textual-inversion embeddings: a file's stem in the prompt or the negative "
                            "prompt is that embedding, as in A1111 (repeatable; default: the embeddings_dir setting)")
    group.add_argument("--threads", type=_whole_number(1, max_threads()), default=default(None),
                       help=f"torch CPU threads, 1 to {max_threads()} (this machine's cores; default: "
                            "DIFFUSERS_TUI_THREADS, else all cores but one)")


def _outputs_option(parser: argparse.ArgumentParser, top_level: bool) -> None:
    parser.add_argument("--outputs", default=_default(top_level), metavar="DIR",
                        help="folder for saved images and index.jsonl (default: outputs)")


def _from_option(parser: argparse.ArgumentParser, top_level: bool) -> None:
    parser.add_argument("--from", dest="from_png", metavar="PNG", default=_default(top_level),
                        help="start from the recipe in a PNG this tool saved, or one with an A1111 "
                             "'parameters' line; options given here override it")


def _lora_option(group) -> None:
    group.add_argument("--lora", action="append", metavar="FILE_OR_NAME[:WEIGHT]",
                       help="run with a LoRA: a file, or a name in the LoRA folders (--lora-dir), at a weight "
                            "(default 1), e.g. --lora detail:0.7 (repeatable)")
    group.add_argument("--sampler-option", action="append", metavar="NAME=VALUE",
                       help="an engine sampler's own option, as ComfyUI's sampler nodes give it: r (DPM++ SDE, "
                            "SEEDS-2), r_1, r_2 (SEEDS-3), max_stage (ER-SDE), max_order (iPNDM, DEIS), order (LMS), "
                            "ge_gamma (gradient estimation), predictor_order, corrector_order, sde_start_percent, "
                            "sde_end_percent (SA-Solver), e.g. --sampler-option r=0.3 (repeatable)")


def _sampler_options(group) -> None:
    """What the engine's samplers take beyond their name: eta, s_noise, and a flow model's shift."""
    group.add_argument("--eta", type=float, help="how much noise ancestral and SDE samplers add back each step "
                                                 "(k-diffusion's eta; DDIM's eta); default: the sampler's own")
    group.add_argument("--s-noise", type=float, dest="s_noise",
                       help="the scale of the noise those samplers add (k-diffusion's s_noise; default: 1)")
    group.add_argument("--s-churn", type=float, dest="s_churn",
                       help="Karras et al.'s churn for Euler, Heun and DPM2: noise added to raise each step's σ "
                            "first (k-diffusion's s_churn; default: 0, none)")
    group.add_argument("--s-tmin", type=float, dest="s_tmin", help="churn only at σ at or above this (default: 0)")
    group.add_argument("--s-tmax", type=float, dest="s_tmax", help="churn only at σ at or below this (default: none)")
    group.add_argument("--shift", type=float, help="a flow-matching model's schedule shift in place of its own "
                                                   "(SD3: 3; Flux's by image size is turned off)")
    group.add_argument("--variation-seed", type=_seed, dest="variation_seed",
                       help="A1111's variation seed: the starting noise moves toward this seed's by "
                            "--variation-strength (0 to 1; default 0, none)")
    group.add_argument("--variation-strength", type=float, dest="variation_strength")
    group.add_argument("--seed-resize-from", type=_size, dest="seed_resize_from", metavar="WIDTHxHEIGHT",
                       help="A1111's seed resize: the seed's noise drawn as for this size, centred in this run's")
    group.add_argument("--pag-scale", type=float, dest="pag_scale",
                       help="perturbed-attention guidance's scale, through the pipeline's PAG variant (SD 1.x/2.x, "
                            "SDXL, SD3; default: 0, off)")
    group.add_argument("--guidance-rescale", type=float, dest="guidance_rescale",
                       help="CFG rescale (diffusers' guidance_rescale, 0 to 1): the guided prediction's spread "
                            "brought back toward the text prediction's; SD 1.x/2.x and SDXL (default: 0, off)")


def _run_options(parser: argparse.ArgumentParser, scheduler_help: str) -> None:
    """Run options: left None when not given, so the config file, the environment or --from fill them."""
    group = parser.add_argument_group("run")
    group.add_argument("--steps", type=int, help="denoising steps (default: 20; 1000 for unet)")
    group.add_argument("--scheduler", help=scheduler_help)
    _schedule_option(group)
    group.add_argument("--seed", type=_seed, default=None, help="whole number or 'random' (default: random)")
    group.add_argument("--noise", choices=["auto", "A1111 CPU", "A1111 GPU", "A1111 NV", "ComfyUI"],
                       help="whose noise rules the engine's samplers follow: A1111's RNG (CPU, GPU, or NV: the "
                            "CUDA generator emulated on any device) or ComfyUI's; auto follows the sampler's tool "
                            "(default: auto)")
    group.add_argument("--ensd", type=int, help="A1111's eta noise seed delta: its noise after the starting noise "
                                                "restarts at seed + ENSD (default: 0, none)")
    _sampler_options(group)
    _lora_option(group)
    group.add_argument("--init-image", dest="init_image", metavar="PICTURE",
                       help="img2img: start from this picture (PNG, JPEG...), stretched to the run's size as "
                            "A1111's \"Just resize\" does, noised to --strength's σ and denoised from there")
    group.add_argument("--strength", type=float,
                       help="img2img's denoising strength, 0 to 1, as A1111's: 0 keeps the picture (one step at the "
                            "smallest σ), 1 starts from σ max (default: 0.75)")
    group.add_argument("--hires-scale", type=float, dest="hires_scale", metavar="SCALE",
                       help="A1111's hires fix: after the run, upscale by SCALE (1 to 4) and denoise again at "
                            "--strength (default 0.7) for --hires-steps steps (default: --steps)")
    group.add_argument("--hires-steps", type=int, dest="hires_steps")
    group.add_argument("--hires-upscaler", dest="hires_upscaler",
                       help="Latent (default), Latent (antialiased), Latent (bicubic), Latent (bicubic antialiased), "
                            "Latent (nearest), Latent (nearest-exact), Lanczos or Nearest")
    group.add_argument("--batch-size", type=int, dest="batch_size",
                       help="images per model call (1 to 16; default 1): seeds count up from --seed, as A1111's")
    group.add_argument("--batch-count", type=int, dest="batch_count",
                       help="calls in a row (1 to 100; default 1); every image is saved with its own seed and "
                            "recipe, and the batch as a grid")
    group.add_argument("--size", type=_size, help="WIDTHxHEIGHT in pixels (default: the model's own)")
    group.add_argument("--preview", choices=["x0", "noisy"],
                       help="what --save-every snapshots show: denoised estimate (x0, default) or noisy sample")
    group.add_argument("--preview-method", choices=["auto", "latent", "taesd", "vae", "none"],
                       help="how live previews are decoded: latent (linear map), taesd (tiny decoder), vae (full "
                            "decode), auto (the most faithful that fits the frame budget; default). Saved "
                            "snapshots are always full decodes")
    group.add_argument("--save-every", type=_positive, metavar="N",
                       help="also save a snapshot every N model calls into a run folder (step_0050.png, ...)")
    group.add_argument("--export", action="store_true",
                       help="also write the steps as an animated WebP and a contact sheet into the run folder")
    _outputs_option(group, top_level=False)
    _from_option(group, top_level=False)


def _schedule_option(group) -> None:
    group.add_argument("--schedule", type=_schedule_name, metavar="TYPE",
                       help="A1111's schedule type: Automatic (the sampler's own default, as in A1111), Uniform, "
                            "Karras, Exponential, Beta or SGM Uniform, where the sampler offers it "
                            "(`diffusers-tui schedulers` lists them)")


def _schedule_name(text: str) -> str:
    try:
        return GenerationRequest(schedule=text).schedule
    except RequestError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffusers-tui",
        description="Run and study diffusion models from a terminal. With no command, opens the app.",
    )
    _model_options(parser, top_level=True)
    _outputs_option(parser, top_level=True)
    _from_option(parser, top_level=True)
    parser.add_argument("--graphics", choices=GRAPHICS,
                        help="how the app shows a finished image: kitty or sixel graphics where the terminal "
                             "has them, else half-blocks (default: auto, detected at start)")
    parser.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                        help="also list the models in this folder (repeatable)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    generate = commands.add_parser("generate", help="text-to-image with a diffusers pipeline, headless",
                                   description="Generate one image from a prompt and save it with its recipe.")
    generate.add_argument("prompt", nargs="?", help=f"what to draw (default: {DEFAULT_PROMPT!r})")
    generate.add_argument("--negative", help="negative prompt")
    generate.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: 5)")
    _model_options(generate, top_level=False)
    _run_options(generate, "registry name, e.g. 'DPM++ 2M Karras' (default: the model's own)")

    unet = commands.add_parser("unet", help="the manual UNet + scheduler loop on an unconditional UNet2DModel",
                               description="Step an unconditional UNet2DModel by hand, as the diffusers "
                                           "quick-start does, saving a snapshot every N steps.")
    _model_options(unet, top_level=False)
    _run_options(unet, "registry name (default: the model's own, e.g. DDPM)")

    compare = commands.add_parser(
        "compare", help="race schedulers on one prompt and seed; print a table, save a grid",
        description="Run the same prompt, seed and starting noise under several schedulers (and step "
                    "counts), batched into one UNet call per round. Under `accelerate launch "
                    "--num_processes N` the runs are split across the processes (one per GPU).")
    compare.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT, help="what to draw (default: %(default)r)")
    compare.add_argument("--schedulers", default="", metavar="LIST",
                         help="registry names separated by commas, e.g. \"Euler,DPM++ 2M Karras,UniPC\"; a name "
                              "without a schedule type runs on --schedule (default: the configured sampler, "
                              "or the model's own)")
    for place, where in (("x", "across"), ("y", "down"), ("z", "one sub-grid per value")):
        compare.add_argument(f"--{place}", metavar="KIND=VALUES",
                             help=f"a study axis, {where}: KIND is one of sampler, schedule, steps, guidance, seed, "
                                  "eta, s_noise, s_churn, s_tmin, s_tmax, shift, noise, ensd, prompt (A1111's search/replace: the first value is searched for), "
                                  "lora (the run's LoRA's weight; lora:NAME=0,0.5,1 names one), "
                                  "option:NAME (a sampler option, --sampler-option); "
                                  "whole numbers take ranges, 1-5, 1-9 (+2), 1-100 [4]; e.g. --x guidance=3,5,7")
    _schedule_option(compare)
    compare.add_argument("--steps", dest="step_list", metavar="LIST",
                         help="step counts, e.g. 10,20,30 (default: the configured steps, 20)")
    compare.add_argument("--seeds", type=int, default=1, metavar="N",
                         help="run every lane on N seeds counting up from --seed; the table gives each figure's mean "
                              "and spread over them, and a ranking says where the seeds disagree (default: 1)")
    compare.add_argument("--reference", metavar="SCHEDULER:STEPS",
                         help="a long run to measure every image against, e.g. \"DPM++ 2M:100\"")
    compare.add_argument("--equal-calls", action="store_true",
                         help="give second-order schedulers (Heun, DPM2, DPM SDE) half the steps")
    compare.add_argument("--no-batch", action="store_true", help="run the schedulers one after another")
    compare.add_argument("--negative", default="", help="negative prompt")
    compare.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: 5)")
    compare.add_argument("--seed", type=_seed, default=None, help="whole number or 'random' (default: random)")
    compare.add_argument("--size", type=_size, help="WIDTHxHEIGHT in pixels (default: the model's own)")
    _sampler_options(compare)
    _lora_option(compare)
    _outputs_option(compare, top_level=False)
    _model_options(compare, top_level=False)

    models = commands.add_parser("models", help="list the demo models, every model in the local HF cache, and the LoRAs and embeddings in their folders")
    models.add_argument("--models-dir", action="append", default=argparse.SUPPRESS, metavar="DIR",
                        help="also look in this folder (repeatable)")
    models.add_argument("--lora-dir", dest="lora_dir", action="append", default=argparse.SUPPRESS, metavar="DIR",
                        help="list the LoRA files in this folder (repeatable; default: the lora_dir setting)")
    models.add_argument("--embeddings-dir", dest="embeddings_dir", action="append", default=argparse.SUPPRESS,
                        metavar="DIR", help="list the embeddings in this folder (repeatable; default: the "
                                            "embeddings_dir setting)")

    schedulers = commands.add_parser("schedulers", help="the scheduler registry, and what a model supports")
    _model_options(schedulers, top_level=False)

    serve = commands.add_parser(
        "serve", help="the app in a web browser (textual-serve), on 127.0.0.1 for an SSH port forward",
        description="Serve the app over HTTP: every browser tab gets its own app process with the options "
                    "given before `serve`. Bound to 127.0.0.1 unless --host says otherwise.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--connections", type=_whole_number(1, 64), default=None,
                       help="browser sessions at once, each an app process (default: the connections setting, 2)")

    commands.add_parser("config", help="the effective settings and where each came from",
                        description="Print every setting: its value and its source (default, the config file "
                                    "and line, a DIFFUSERS_TUI_* variable, or the command line).")
    return parser

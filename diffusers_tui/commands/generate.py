"""`diffusers-tui generate` and `unet`: one run, headless, from options, settings and --from.

A value comes from the first of: this command line, the --from recipe, the settings
(environment, config file, defaults); see engine.build_request. The run shows a progress
bar counted in model calls and ends in one line naming the file it saved.
"""

from __future__ import annotations

import sys
import threading

from diffusers_tui.commands.common import engine_for, recipe_of, save_or_rescue, say, warn
from diffusers_tui.engine import (GenerationRequest, RunError, build_request, guidance_note, init_image_note, prompt_note, sampler_note,
                                  prompt_syntax_note)


def loras_of(args) -> tuple | None:
    """--lora's (name, weight) pairs; None when not given (a --from recipe's stand)."""
    from diffusers_tui.engine import parse_lora

    return tuple(parse_lora(text) for text in args.lora) if getattr(args, "lora", None) else None


def seed_resize_of(args) -> tuple | None:
    """--seed-resize-from as (width, height); None when not given."""
    from diffusers_tui.engine import parse_size

    text = getattr(args, "seed_resize_from", None)
    return parse_size(text) if text else None


def sampler_options_of(args) -> tuple | None:
    """--sampler-option's (name, value) pairs; None when not given."""
    from diffusers_tui.engine import parse_sampler_option

    options = getattr(args, "sampler_option", None)
    return tuple(dict(parse_sampler_option(text) for text in options).items()) if options else None


def request_of(args, settings, engine) -> GenerationRequest:
    """The run's request: settings < the --from recipe < options given on this command line."""
    keeps_previews = bool(args.save_every or args.export)
    given = {
        "prompt": getattr(args, "prompt", None), "negative_prompt": getattr(args, "negative", None),
        "seed": args.seed, "preview_every": args.save_every or 1,
        **{name: getattr(args, name, None) for name in ("eta", "s_noise", "shift", "s_churn", "s_tmin", "s_tmax",
                                                        "guidance_rescale", "variation_seed", "variation_strength", "pag_scale",
                                                        "init_image", "strength", "hires_scale", "hires_steps",
                                                        "hires_upscaler", "batch_size", "batch_count")},
        "seed_resize_from": seed_resize_of(args),
        "loras": loras_of(args), "sampler_options": sampler_options_of(args),
        # Previews cost a conversion each: made only when something keeps them.
        "preview_method": None if keeps_previews else "none",
    }
    if args.command == "unet":
        given["guidance"] = 0.0  # an unconditional model has nothing to guide
    return build_request(settings.values, recipe=recipe_of(args, engine), given=given, pinned=settings.pinned,
                         mode="unet" if args.command == "unet" else "text-to-image")


def run(args, settings) -> int:
    from tqdm import tqdm

    engine = engine_for(args)
    request = request_of(args, settings, engine)  # validate before the slow model load
    for found in engine.tidy_outputs(args.outputs):  # saves a killed run left unfinished
        warn(found)
    say(f"loading {request.model} ...", file=sys.stderr)
    summary = engine.load(request.model)
    for note in summary.notes:
        say(f"note: {note}", file=sys.stderr)
    for note in (prompt_syntax_note(request.prompt, request.negative_prompt, summary),
                 prompt_note(request.prompt, summary), guidance_note(request, summary),
                 sampler_note(request, summary), init_image_note(request, summary)):
        if note:
            say(f"note: {note}", file=sys.stderr)
    bar = tqdm(total=None, unit="call", file=sys.stderr, dynamic_ncols=True, leave=False, delay=0.1)
    cancel = threading.Event()

    def on_step(snapshot) -> None:
        bar.total = snapshot.total
        bar.n = snapshot.step
        bar.set_postfix_str(f"t={snapshot.timestep:.0f}", refresh=False)
        bar.refresh()

    try:
        result = engine.run(request, on_step, cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        bar.close()
    if result.stopped:
        raise RunError(result.stopped)
    with_steps = bool(args.save_every)
    path = save_or_rescue(lambda folder: engine.save(result, folder, with_steps), args.outputs)
    extra = f", {len(result.frames)} snapshots in {path.with_suffix('').name}/" if with_steps else ""
    say(f"saved {path}  ({result.model_calls} model calls in {result.elapsed_s:.1f} s, "
          f"{result.calls_per_second:.1f} it/s, seed {request.seed}{extra})")
    if args.export:
        done = engine.export(result, path.with_suffix(""))
        say(f"exported {done.frames} frames: {done.animation} and {done.contact_sheet.name}")
    return 0

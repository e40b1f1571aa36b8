"""`diffusers-tui generate` and `unet`: one run, headless, from options, settings and --from.

A value comes from the first of: this command line, the --from recipe, the settings
(environment, config file, defaults); the run shows a progress bar counted in model
calls and ends in one line naming the file it saved.
"""

from __future__ import annotations

import sys
import threading

from diffusers_tui.cli import DEFAULT_PROMPT, save_or_rescue
from diffusers_tui.engine.errors import RunError
from diffusers_tui.engine.request import GenerationRequest, parse_size, random_seed


def recipe_of(args):
    """The recipe of --from, its notes printed; None without --from."""
    if not getattr(args, "from_png", None):
        return None
    from diffusers_tui.engine.history import recipe_from_png

    recipe = recipe_from_png(args.from_png)
    for note in recipe.notes:
        print(f"note: --from {args.from_png}: {note}", file=sys.stderr)
    return recipe


#: Request fields a recipe (--from) brings, and the setting that overrides each from the command line.
RECIPE_FIELDS = {"model": "model", "scheduler": "scheduler", "steps": "steps", "guidance": "guidance",
                 "width": "size", "height": "size"}


def build_request(args, settings) -> GenerationRequest:
    """Settings < the --from recipe < options given on this command line."""
    width, height = parse_size(args.size or "")
    fields = {"model": args.model, "scheduler": args.scheduler, "steps": args.steps,
              "guidance": getattr(args, "guidance", 0.0), "width": width, "height": height}
    recipe = recipe_of(args)
    prompt, negative, seed = getattr(args, "prompt", None), getattr(args, "negative", None), args.seed
    if recipe is not None:
        for name, setting in RECIPE_FIELDS.items():
            if name in recipe.fields and settings.sources[setting] != "command line":
                fields[name] = recipe.fields[name]
        prompt = recipe.fields.get("prompt", "") if prompt is None else prompt
        negative = recipe.fields.get("negative_prompt", "") if negative is None else negative
        seed = recipe.fields.get("seed") if seed is None else seed
    return GenerationRequest(
        prompt=DEFAULT_PROMPT if prompt is None else prompt,
        negative_prompt=negative or "",
        mode="unet" if args.command == "unet" else "text-to-image",
        seed=random_seed() if seed is None else seed,
        preview=args.preview,
        preview_every=args.save_every or 1,
        # Previews cost a conversion each: made only when something keeps them.
        preview_method=args.preview_method if args.save_every or args.export else "none",
        **fields,
    )


def run(args, settings, engine) -> int:
    from tqdm import tqdm

    from diffusers_tui.engine import outputs

    request = build_request(args, settings)  # validate before the slow model load
    print(f"loading {request.model} ...", file=sys.stderr)
    loaded = engine.load(request.model)
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    snapshots = []
    bar = tqdm(total=None, unit="call", file=sys.stderr, dynamic_ncols=True, leave=False, delay=0.1)
    cancel = threading.Event()

    def on_step(snapshot) -> None:
        bar.total = snapshot.total
        bar.n = snapshot.step
        bar.set_postfix_str(f"t={snapshot.timestep:.0f}", refresh=False)
        bar.refresh()
        if snapshot.preview is not None and (args.save_every or args.export):
            snapshots.append(snapshot)

    try:
        result = engine.run(request, on_step, cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        bar.close()
    if result.stopped:
        raise RunError(result.stopped)
    kept = snapshots if args.save_every else None
    path = save_or_rescue(lambda folder: outputs.save_result(result, folder, kept), args.outputs)
    extra = f", {len(snapshots)} snapshots in {path.with_suffix('').name}/" if kept else ""
    print(f"saved {path}  ({result.model_calls} model calls in {result.elapsed_s:.1f} s, "
          f"{result.calls_per_second:.1f} it/s, seed {request.seed}{extra})")
    if args.export:
        from diffusers_tui.engine.export import export_denoising

        done = export_denoising(snapshots, result.image, path.with_suffix(""))
        print(f"exported {done.frames} frames: {done.animation} and {done.contact_sheet.name}")
    return 0

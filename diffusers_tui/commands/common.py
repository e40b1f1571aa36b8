"""What every headless command shares: the settings, the Engine, --from, rescuing a save, printing a table."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable

from diffusers_tui import settings as settings_module
from diffusers_tui.engine import Engine, LoadOptions, OutputError, shown

#: Where a command puts an image its --outputs folder would not take, so no run is lost.
RESCUE_DIR = Path(tempfile.gettempdir()) / "diffusers-tui-unsaved"
#: The unet command keeps its own defaults: settings are for the text-to-image model.
UNET_DEFAULTS = {"model": "demo-ddpm", "steps": 1000}


def say(text: object, file=None) -> None:
    """Print one message; what came from files or other processes is escaped first (engine.shown)."""
    print(shown(text, None, multiline=True), file=file or sys.stdout)


def warn(text: str) -> None:
    say(f"diffusers-tui: warning: {text}", file=sys.stderr)


def resolve_settings(args) -> settings_module.Settings:
    """Fill the settings-backed options: command line > DIFFUSERS_TUI_* > config file > defaults."""
    given = {name: getattr(args, name, None) for name in settings_module.SETTINGS}
    settings = settings_module.load(given)
    for warning in settings.warnings:
        warn(warning)
    if args.command == "unet":
        for name, value in UNET_DEFAULTS.items():
            if settings.sources[name] != "command line":
                settings.values[name], settings.sources[name] = value, "unet default"
    for name in settings_module.SETTINGS:
        if hasattr(args, name):
            setattr(args, name, settings[name])
    if args.command == "schedulers" and settings.sources["model"] != "command line":
        args.model = None  # the registry for this machine, not for a model
    return settings


def engine_for(args, model_folders: tuple[str, ...] = ()) -> Engine:
    options = LoadOptions(device=args.device, dtype=args.dtype, offload=args.offload, vae=args.vae,
                          allow_pickle=args.allow_pickle, config_dir=args.config,
                          taesd_folder=getattr(args, "taesd_folder", None) or None,
                          lora_dirs=tuple(getattr(args, "lora_dir", None) or ()),
                          embedding_dirs=tuple(getattr(args, "embeddings_dir", None) or ()))
    return Engine(options, model_folders=model_folders, threads=args.threads)


def recipe_of(args, engine: Engine):
    """The recipe of --from, its notes printed; None without --from."""
    if not getattr(args, "from_png", None):
        return None
    recipe = engine.read_recipe(args.from_png)
    for note in recipe.notes:
        say(f"note: --from {args.from_png}: {note}", file=sys.stderr)
    return recipe


def save_or_rescue(save: Callable[[str | Path], Path], outputs_dir: str) -> Path:
    """`save(outputs_dir)`; when that folder cannot be written, `save(RESCUE_DIR)` and say so."""
    try:
        return save(outputs_dir)
    except OutputError as error:
        if error.saved is not None:
            raise
        try:
            # The temp folder is shared: the rescue folder is ours alone (0700, owned, no symlink),
            # so nobody can plant an index.jsonl link there for our save to append through.
            rescued = save(Engine.private_folder(RESCUE_DIR))
        except OutputError as rescue_error:
            raise OutputError(f"{error}; and not into {RESCUE_DIR} either: {rescue_error}") from None
        raise OutputError(f"{error}. Saved it as {rescued} instead: move it from there, or choose a "
                          "writable folder with --outputs DIR", saved=rescued) from None


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        say("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())

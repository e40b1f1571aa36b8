"""`diffusers-tui models`, `schedulers` and `config`: what is on this machine, and the settings in force."""

from __future__ import annotations

from diffusers_tui.commands.common import engine_for, print_table, say
from diffusers_tui.engine import quiet


def models(args) -> int:
    engine = engine_for(args, tuple(args.models_dir))
    rows = [(m.name, m.kind, m.source, _human_size(m.size_bytes), str(m.path)) for m in engine.models()]
    print_table(("name", "kind", "source", "size", "path"), rows)
    return 0


def schedulers(args) -> int:
    quiet()
    statuses = engine_for(args).scheduler_statuses(args.model)
    rows = [(s.entry.name, s.entry.class_name, s.entry.options_text or "-", str(s.entry.order),
             "yes" if s.available else f"no: {s.reason}") for s in statuses]
    if args.model:
        say(f"schedulers for {args.model}:")
    print_table(("name", "class", "options", "calls/step", "available"), rows)
    return 0


def config(settings) -> int:
    say(f"config file: {settings.path}{'' if settings.path.exists() else ' (not written yet: F9 in the app)'}")
    print_table(("setting", "value", "from"), settings.rows())
    return 0


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"

"""`diffusers-tui models`, `schedulers` and `config`: what is on this machine, and the settings in force."""

from __future__ import annotations

from diffusers_tui.commands.common import engine_for, print_table, say
from diffusers_tui.engine import MODEL_DEFAULT, quiet


def models(args) -> int:
    engine = engine_for(args, tuple(args.models_dir))
    rows = [(m.name, m.kind, m.source, _human_size(m.size_bytes), str(m.path), m.reason or "-")
            for m in engine.models()]
    print_table(("name", "kind", "source", "size", "path", "why not"), rows)
    return 0


def schedulers(args) -> int:
    quiet()
    statuses = engine_for(args).scheduler_statuses(args.model)
    rows = [(s.entry.name, "yes" if s.entry.a1111 else "no", s.entry.class_name, _schedules_text(s.entry),
             str(s.entry.order), "yes" if s.available else f"no: {s.reason}") for s in statuses]
    if args.model:
        say(f"schedulers for {args.model}:")
    print_table(("sampler", "A1111", "class", "schedule types (Automatic is)", "calls/step", "available"), rows)
    notes = [f"  {s.entry.name}{'' if key == '*' else ' ' + key}: {note}"
             for s in statuses for key, note in s.entry.parity.items()]
    if notes:
        say("where diffusers cannot run what A1111 runs (RMSE 0-255 on the demo, 20 steps; "
            "benchmarks/a1111_parity.py measures it):")
        for line in notes:
            say(line)
    return 0


def _schedules_text(entry) -> str:
    automatic = "its own config" if entry.name == MODEL_DEFAULT else entry.automatic_text
    others = [schedule for schedule in entry.schedules if schedule != "Automatic"]
    return f"Automatic ({automatic})" + (f", {', '.join(others)}" if others else "")


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

"""`diffusers-tui models`, `schedulers` and `config`: what is on this machine, and the settings in force."""

from __future__ import annotations

from diffusers_tui.commands.common import engine_for, print_table, say
from diffusers_tui.engine import MODEL_DEFAULT, list_embeddings, list_loras, quiet, sampler_facts


def models(args) -> int:
    engine = engine_for(args, tuple(args.models_dir))
    rows = [(m.name, m.kind, m.source, _human_size(m.size_bytes), str(m.path), m.reason or "-")
            for m in engine.models()]
    print_table(("name", "kind", "source", "size", "path", "why not"), rows)
    _named_files("LoRAs", "<lora:name:weight> or --lora name:weight", "lora_dir", "--lora-dir",
                 tuple(getattr(args, "lora_dir", None) or ()), list_loras)
    _named_files("Embeddings", "the name as a word in the prompt or the negative prompt", "embeddings_dir",
                 "--embeddings-dir", tuple(getattr(args, "embeddings_dir", None) or ()), list_embeddings)
    return 0


def _named_files(title: str, use: str, setting: str, flag: str, folders: tuple[str, ...], lister) -> None:
    """The LoRA or embedding files in their folders, by the name that finds each."""
    found = lister(folders)
    if not folders:
        say(f"\n{title}: no folder (set {setting} in the config, or {flag} DIR)")
    elif not found:
        say(f"\n{title}: none in {', '.join(folders)}")
    else:
        say(f"\n{title} ({use}), in {', '.join(folders)}:")
        print_table(("name", "size", "path", "note"),
                    [(item.name, _human_size(item.size_bytes), str(item.path),
                      f"hidden: the name finds {item.shadowed_by}" if item.shadowed_by else "-") for item in found])


def schedulers(args) -> int:
    quiet()
    statuses = engine_for(args).scheduler_statuses(args.model)
    facts = sampler_facts()
    rows = []
    for status in statuses:
        entry = status.entry
        flow_ok = facts.runs_on_flow(entry.name)
        calls = "adaptive" if entry.adaptive else str(entry.order)
        rows.append((entry.name, _tool(entry), calls, "yes" if entry.stochastic else "no",
                     "-" if flow_ok is None else "yes" if flow_ok else "no", _schedules_text(entry),
                     "yes" if status.available else f"no: {status.reason}"))
    if args.model:
        say(f"schedulers for {args.model}:")
    print_table(("sampler", "tool", "calls/step", "stochastic", "flow models", "schedule types (Automatic is)",
                 "available"), rows)
    say(f"A1111's schedule types: {', '.join(facts.a1111_schedules[1:])}")
    say(f"ComfyUI's schedulers and schedule nodes: {', '.join(facts.comfyui_schedules)}")
    notes = [f"  {s.entry.name}{'' if key == '*' else ' ' + key}: {note}"
             for s in statuses for key, note in s.entry.parity.items()]
    if notes:
        say("where diffusers' own classes cannot run what A1111 runs (RMSE 0-255 on the demo, 20 steps; "
            "benchmarks/sampler_parity.py measures the engine's samplers):")
        for line in notes:
            say(line)
    return 0


def _tool(entry) -> str:
    if entry.name == MODEL_DEFAULT:
        return f"model ({entry.class_name})"
    return entry.tool if entry.tool != "diffusers" else f"diffusers ({entry.class_name.removesuffix('Scheduler')})"


def _schedules_text(entry) -> str:
    automatic = "its own config" if entry.name == MODEL_DEFAULT else entry.automatic_text
    if entry.is_engine and len(entry.schedules) > 1:  # every schedule type of its tool: listed below the table
        return f"Automatic ({automatic}), {entry.tool}'s"
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

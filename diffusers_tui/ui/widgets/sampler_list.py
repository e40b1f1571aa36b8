"""The sampler list and its schedule-type field: rows grouped by tool and filtered, the types each offers, marking."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList, Select
from textual.widgets.option_list import Option, OptionDoesNotExist

from diffusers_tui.engine import MODEL_DEFAULT, schedule_names


class SchedulerList(OptionList):
    """The registry's samplers; space marks the highlighted one, on the chosen schedule type, for a comparison."""

    BINDINGS = [Binding("space,m", "toggle_mark", "Mark", id="compare.mark",
                        tooltip="Mark or unmark the highlighted sampler on the chosen schedule type for a "
                                "comparison (f6 races them)")]

    def action_toggle_mark(self) -> None:
        if self.highlighted is not None:
            self.screen.query_one("SettingsPanel").toggle_mark(self.get_option_at_index(self.highlighted).id)




def offer_schedules(select: Select, entry, panel) -> list[str]:
    """Fill `select` with the schedule types `entry` offers (every type before a model has loaded);
    the current choice is kept where offered, else Automatic. Returns the offered types."""
    if entry is None or not entry.class_name:
        offered, automatic = list(schedule_names()), ""
    else:
        offered = list(entry.schedules)
        automatic = "its own config" if entry.name == MODEL_DEFAULT else entry.automatic_text
    current = select.value if select.value in offered else "Automatic"
    with panel.prevent(Select.Changed):
        select.set_options([(f"Automatic ({automatic})" if schedule == "Automatic" and automatic else schedule,
                             schedule) for schedule in offered])
        select.value = current
        select.mutate_reactive(Select.value)  # the label redraws only on a change: new labels, same value
    return offered


def fill_sampler_list(options: OptionList, statuses, marked, filter_text: str, keep: str | None,
                      highlight: str | None) -> None:
    """Refill `options`: a heading per tool, the rows `filter_text` matches (and `keep`), each marked row with
    its schedule types, unavailable ones greyed with the reason; `highlight` stays highlighted if shown."""
    options.clear_options()
    group = None
    for status in statuses:
        if not matches(status.entry, filter_text) and status.entry.name != keep:
            continue
        if status.entry.tool != group and status.entry.tool in TOOL_HEADINGS:
            group = status.entry.tool
            options.add_option(Option(Text(TOOL_HEADINGS[group], style="bold"), disabled=True))
        schedules = [schedule for name, schedule in marked if name == status.entry.name]
        label = Text(("● " if schedules else "  ") + row_name(status.entry))
        if schedules:
            label.append(f" ({', '.join(schedules)})", style="bold")
        if not status.available:
            label.append(f"  {status.reason}", style="dim italic")
        options.add_option(Option(label, id=status.entry.name, disabled=not status.available))
    if highlight is not None:
        try:
            options.highlighted = options.get_option_index(highlight)
        except OptionDoesNotExist:
            pass


#: The sampler list's groups, by whose names they are.
TOOL_HEADINGS = {"A1111": "A1111 · the engine", "ComfyUI": "ComfyUI · the engine", "diffusers": "diffusers' classes"}


def matches(entry, text: str) -> bool:
    """Whether every word of `text` is in the entry's name, tool or description ("comfy sde", "cfg++")."""
    if entry is None:
        return False
    haystack = f"{entry.name} {entry.tool} {entry.description} {entry.class_name}".casefold()
    return all(word in haystack for word in text.casefold().split())


def row_name(entry) -> str:
    """A list row's name: the model default says its class ("default · LCM"), on one line of the list."""
    if entry.name != MODEL_DEFAULT or not entry.class_name:
        return entry.name
    name = f"default · {entry.class_name.removesuffix('Scheduler')}"
    return name if len(name) <= 30 else name[:29] + "…"



"""The sampler list and its schedule-type field: which types the highlighted sampler offers, and marking."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import OptionList, Select

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

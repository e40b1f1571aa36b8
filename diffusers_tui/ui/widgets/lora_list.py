"""The LoRA field's list: the LoRA folders' files, narrowed to the name being typed, and what enter adds."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from diffusers_tui.engine import shown


def typed_name(field_text: str) -> str:
    """The LoRA name being typed: the item after the last comma, without its weight."""
    name, colon, weight = field_text.rsplit(",", 1)[-1].strip().rpartition(":")
    return (name if colon and name else weight).lower()


def fill_lora_list(options: OptionList, loras: list, field_text: str, none_found: str) -> None:
    """List `loras` (engine NamedFile) whose name has the name being typed; a file another of the same name
    hides is left out (the name finds the other). With none to list, one greyed line says why."""
    words = typed_name(field_text)
    matching = [lora for lora in loras if lora.shadowed_by is None and words in lora.name.lower()]
    options.clear_options()
    if matching:
        options.add_options([Option(Text(f"{shown(lora.name, 60)}  {shown(str(lora.path.parent), 80)}"), id=lora.name)
                             for lora in matching])
    else:
        options.add_option(Option(Text(none_found if not loras else f"no LoRA named like {shown(words, 40)!r}"),
                                  disabled=True))


def with_lora(field_text: str, name: str) -> str:
    """The field's text with `name` at weight 1 in place of the item being typed, ready for the next."""
    kept = [item.strip() for item in field_text.split(",")[:-1] if item.strip()]
    return ", ".join([*kept, f"{name}:1"]) + ", "

"""The LoRA field: `name:weight, ...`, with the LoRA folders' files listed under it, narrowed as a name is typed."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from diffusers_tui.engine import parse_lora, shown


def typed_name(field_text: str) -> str:
    """The LoRA name being typed: the item after the last comma, without its weight."""
    name, colon, weight = field_text.rsplit(",", 1)[-1].strip().rpartition(":")
    return (name if colon and name else weight).lower()


def with_lora(field_text: str, name: str) -> str:
    """The field's text with `name` at weight 1 in place of the item being typed, ready for the next."""
    kept = [item.strip() for item in field_text.split(",")[:-1] if item.strip()]
    return ", ".join([*kept, f"{name}:1"]) + ", "


class LoraPicker(Vertical):
    """The field (#loras) and the list (#lora-list) of LoRA files (engine NamedFile) whose name has the name
    being typed; a file another of the same name hides is left out (the name finds the other). Enter in the
    field, or on a listed file, adds it at weight 1."""

    DEFAULT_CSS = "LoraPicker { height: auto; } LoraPicker #lora-list { height: 5; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loras: list = []
        self._none_found = "LoRA folders not looked at yet"

    def compose(self) -> ComposeResult:
        yield Input(placeholder="none; e.g. detail:0.7, style:0.5", id="loras",
                    tooltip="LoRA files to run with, each at a weight (-10 to 10): a name from the list below (the "
                            "LoRA folders, lora_dir) or a file's path; typing narrows the list, enter takes its first")
        yield OptionList(id="lora-list")

    def on_mount(self) -> None:
        self._fill()

    def show(self, loras: list, none_found: str) -> None:
        """The LoRA files to offer, or `none_found` saying why there are none."""
        self._loras, self._none_found = list(loras), none_found
        self._fill()

    @property
    def text(self) -> str:
        return self.query_one("#loras", Input).value

    @text.setter
    def text(self, value: str) -> None:
        self.query_one("#loras", Input).value = value

    def pairs(self) -> tuple[tuple[str, float], ...]:
        """The field as (name or path, weight) pairs; RequestError("lora") names a bad item."""
        return tuple(parse_lora(item) for item in self.text.split(",") if item.strip())

    def _fill(self) -> None:
        words = typed_name(self.text)
        matching = [lora for lora in self._loras if lora.shadowed_by is None and words in lora.name.lower()]
        options = self.query_one("#lora-list", OptionList)
        options.clear_options()
        if matching:
            options.add_options([Option(Text(f"{shown(lora.name, 60)}  {shown(str(lora.path.parent), 80)}"),
                                        id=lora.name) for lora in matching])
            options.highlighted = 0  # tab into the list and enter takes the first match
        else:
            options.add_option(Option(Text(self._none_found if not self._loras else
                                           f"no LoRA named like {shown(words, 40)!r}"), disabled=True))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "loras":
            self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        typing = event.value.rsplit(",", 1)[-1].strip()
        first = self.query_one("#lora-list", OptionList)
        if event.input.id == "loras" and typing and ":" not in typing and first.option_count:
            if first.get_option_at_index(0).id is not None:
                self._add(first.get_option_at_index(0).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "lora-list" and event.option.id is not None:
            event.stop()
            self._add(event.option.id)

    def _add(self, name: str) -> None:
        field = self.query_one("#loras", Input)
        field.value = with_lora(field.value, name)
        field.cursor_position = len(field.value)
        field.focus()

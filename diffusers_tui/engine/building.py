"""The one way a GenerationRequest (or a ComparisonRequest) is built, for the app and every command.

A field's value is the first of:

1. a value given explicitly (a command-line option, or the app's field);
2. a setting given on the command line (`pinned`), which outranks a recipe;
3. the recipe (`--from`, or history), ours or another tool's;
4. the settings layers (config.toml, DIFFUSERS_TUI_*, the built-in defaults);
5. the request's own default.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

from diffusers_tui.engine.comparison import ComparisonRequest, Lane, parse_reference, parse_step_list
from diffusers_tui.engine.request import DEFAULT_PROMPT, GenerationRequest, parse_size, random_seed

#: Request fields that settings supply, and the setting each comes from.
SETTING_OF_FIELD = {"model": "model", "scheduler": "scheduler", "schedule": "schedule", "steps": "steps", "guidance": "guidance",
                    "width": "size", "height": "size", "preview": "preview", "preview_every": "preview_every",
                    "preview_method": "preview_method", "noise": "noise", "ensd": "ensd"}
#: Request fields a recipe may bring.
RECIPE_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "schedule", "steps", "guidance", "seed", "width", "height",
                 "noise", "ensd")


def build_request(settings: Mapping[str, Any] | None = None, *, recipe=None, given: Mapping[str, Any] | None = None,
                  pinned: Collection[str] = (), mode: str = "text-to-image") -> GenerationRequest:
    """A validated request from the layers above; RequestError names the first bad field.

    `settings` maps setting names to effective values (see diffusers_tui.settings);
    `pinned` names the settings that were given on the command line; `recipe` is a
    Recipe (its `fields`); `given` holds request fields given explicitly (None: not given).
    A seed given nowhere is a fresh random one; a prompt given nowhere is DEFAULT_PROMPT.
    """
    settings = settings or {}
    given = {name: value for name, value in (given or {}).items() if value is not None}
    from_recipe = dict(getattr(recipe, "fields", None) or {})
    from_settings = _fields_from_settings(settings)
    fields: dict[str, Any] = {}
    for name in {*from_settings, *from_recipe, *given}:
        if name in given:
            fields[name] = given[name]
        elif name in from_settings and SETTING_OF_FIELD.get(name) in pinned:
            fields[name] = from_settings[name]
        elif name in from_recipe and name in RECIPE_FIELDS:
            fields[name] = from_recipe[name]
        elif name in from_settings:
            fields[name] = from_settings[name]
    fields.setdefault("prompt", DEFAULT_PROMPT)
    if fields.get("seed") is None:
        fields["seed"] = random_seed()
    return GenerationRequest(mode=mode, **fields)


def _fields_from_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    fields = {}
    for name, setting in SETTING_OF_FIELD.items():
        if setting in settings and name not in ("width", "height"):
            fields[name] = settings[setting]
    if "size" in settings:
        fields["width"], fields["height"] = parse_size(settings["size"] or "")
    return fields


def build_comparison(base: GenerationRequest, schedulers: Sequence[str], steps: str, reference: str | None = None,
                     equal_calls: bool = False, batch: bool = True) -> ComparisonRequest:
    """Every scheduler at every step count in `steps` ("10,20"), on `base`'s prompt, seed and size."""
    counts = parse_step_list(steps)
    return ComparisonRequest(base=base, lanes=tuple(Lane(name, count) for name in schedulers for count in counts),
                             equal_calls=equal_calls, reference=parse_reference(reference or None), batch=batch)

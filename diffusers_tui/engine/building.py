"""The one way a GenerationRequest (or a ComparisonRequest) is built, for the app and every command.

A field's value is the first of:

1. a value given explicitly (a command-line option, or the app's field);
2. a setting given on the command line (`pinned`), which outranks a recipe;
3. the recipe (`--from`, or history), ours or another tool's;
4. the settings layers (config.toml, DIFFUSERS_TUI_*, the built-in defaults);
5. the request's own default.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, Collection, Mapping, Sequence

from diffusers_tui.engine.axes import (FIELD_KINDS, MAX_VALUES, POSITIONS, Axis, check_prompt_axis, parse_axis,
                                       replaced_prompt)
from diffusers_tui.engine.comparison import ComparisonRequest, Lane, parse_reference, parse_step_list
from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.text import shown
from diffusers_tui.engine.request import (DEFAULT_PROMPT, MAX_SEED, GenerationRequest, check_whole, parse_size,
                                          random_seed)

#: Request fields that settings supply, and the setting each comes from.
SETTING_OF_FIELD = {"model": "model", "scheduler": "scheduler", "schedule": "schedule", "steps": "steps", "guidance": "guidance",
                    "width": "size", "height": "size", "preview": "preview", "preview_every": "preview_every",
                    "preview_method": "preview_method", "noise": "noise", "ensd": "ensd"}
#: Request fields a recipe may bring.
RECIPE_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "schedule", "steps", "guidance", "seed", "width", "height",
                 "noise", "ensd", "eta", "s_noise", "shift", "s_churn", "s_tmin", "s_tmax", "loras", "sampler_options",
                 "guidance_rescale", "variation_seed", "variation_strength", "seed_resize_from", "init_image", "strength",
                 "hires_scale", "hires_steps", "hires_upscaler", "batch_size", "batch_count", "pag_scale")


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
                     equal_calls: bool = False, batch: bool = True,
                     axes: Mapping[str, str | Axis | None] | None = None, seeds: int = 1) -> ComparisonRequest:
    """A lane for every combination of a study's axes, on `base`.

    `axes` places up to three axes: {"x": "guidance=3,5,7", "y": ..., "z": ...} (strings as
    engine.axes.parse_axis reads them, or Axis objects). Without a sampler axis, `schedulers` gives the
    sampler: one name runs in every lane, several make an axis in the first free place of y, x, z (none
    given: the base request's). Without a steps axis, `steps` ("10,20") does the same in the first free
    place of x, y, z. With no axes, that is a plain comparison: samplers down, step counts across.

    `seeds` > 1 runs every lane on that many seeds, counting up from the base seed as A1111 counts a
    batch's seeds; the table gives each figure's mean and spread over them (ComparisonResult.summary).
    """
    check_whole("seeds", seeds, 1, MAX_VALUES)
    placed: dict[str, Axis] = {}
    for position, given in (axes or {}).items():
        if position not in POSITIONS:
            raise RequestError("axis", f"{position!r} is not an axis place: x, y or z")
        if given:
            placed[position] = given if isinstance(given, Axis) else parse_axis(given, f"{position} axis")
    seen: dict[tuple[str, str], str] = {}
    for position, axis in list(placed.items()):
        if axis.kind == "lora":
            placed[position] = axis = _lora_axis(base, axis, f"{position} axis")
        if (axis.kind, axis.target) in seen:
            raise RequestError(f"{position} axis", f"the {seen[axis.kind, axis.target]} and {position} axes both "
                                                   f"vary the {axis.title}: put its values on one")
        seen[axis.kind, axis.target] = position
    kinds = [kind for kind, _ in seen]
    if "sampler" not in kinds:
        from diffusers_tui.engine.sampling.registry import MODEL_DEFAULT

        # A bare sampler name runs on the base request's schedule type (ComparisonRequest labels it).
        names = list(dict.fromkeys(schedulers)) or [base.scheduler or MODEL_DEFAULT]
        _place(placed, Axis("sampler", tuple(names)), ("y", "x", "z"))
    if "steps" not in kinds:
        _place(placed, Axis("steps", tuple(parse_step_list(steps))), ("x", "y", "z"))
    for axis in placed.values():
        if axis.kind == "prompt":
            check_prompt_axis(base.prompt, axis, "axis")
    if seeds > 1 and "seed" in kinds:
        raise RequestError("seeds", "a seed axis and --seeds both vary the seed: use one of them")
    if seeds > 1 and base.seed + seeds - 1 > MAX_SEED:
        raise RequestError("seeds", f"counting {seeds} seeds up from {base.seed} passes {MAX_SEED}")
    order = tuple(placed.get(position) for position in POSITIONS)
    present = [(index, axis) for index, axis in enumerate(order) if axis is not None]
    lanes = []
    # Sub-grid by sub-grid, row by row, then across: the order the grid and the table read them in.
    for combination in itertools.product(*(range(len(axis.values)) for _, axis in reversed(present))):
        at = [0, 0, 0]
        for (index, _), value_index in zip(reversed(present), combination):
            at[index] = value_index
        chosen = [(axis, axis.values[index]) for axis, index in zip(order, at) if axis is not None]
        chosen += [(axis, axis.values[0]) for key, axis in placed.items() if key.startswith("_")]
        lane = _lane_with(base, chosen, tuple(at))
        if seeds == 1:
            lanes.append(lane)
        else:  # the seed's place among the seeds is the lane's fourth coordinate
            lanes.extend(replace(lane, settings=(*lane.settings, ("seed", base.seed + number)),
                                 at=(*lane.at, number)) for number in range(seeds))
    return ComparisonRequest(base=base, lanes=tuple(lanes), equal_calls=equal_calls,
                             reference=parse_reference(reference or None), batch=batch, axes=order, seeds=seeds)


def _place(placed: dict[str, Axis], axis: Axis, preference: tuple[str, ...]) -> None:
    """Put `axis` in the first free place of `preference`; a single value needs no place and is kept aside."""
    if len(axis.values) == 1:
        placed.setdefault("_" + axis.kind, axis)  # not drawn; every lane takes its value
        return
    free = next((position for position in preference if position not in placed), None)
    if free is None:
        raise RequestError("axis", f"x, y and z are taken, and the {axis.kind} has several values: put them on "
                                   f"one of the axes ({axis.kind}=...)")
    placed[free] = axis


def _lora_axis(base: GenerationRequest, axis: Axis, field: str) -> Axis:
    """A LoRA axis naming its LoRA: "lora=..." weights the request's one LoRA; "lora:NAME=..." names any,
    which the lanes add where the request does not have it."""
    from diffusers_tui.engine.models.loras import named_loras

    if axis.target:
        return axis
    names = named_loras(base)
    if len(names) != 1:
        have = f"it has {', '.join(shown(name, 40) for name in names)}" if names else "it has none"
        raise RequestError(field, f"a LoRA axis weights the run's one LoRA, and {have}: name it, as "
                                  "lora:NAME=0,0.5,1")
    return replace(axis, target=names[0])


def _lane_with(base: GenerationRequest, chosen: list, at: tuple) -> Lane:
    """The lane that takes each (axis, value) in `chosen`, at value indices `at` of the placed axes."""
    values = dict((axis.kind, value) for axis, value in chosen)
    settings = []
    for axis, value in chosen:
        if axis.kind in FIELD_KINDS:
            settings.append((axis.kind, value))
        elif axis.kind == "prompt":
            settings.append(("prompt", replaced_prompt(base.prompt, axis, value)))
        elif axis.kind in ("lora", "option"):
            settings.append((axis.kind, (axis.target, value)))
    sampler = values["sampler"]
    if "schedule" in values:
        sampler = f"{sampler} {values['schedule']}"
    return Lane(sampler, values["steps"], tuple(settings), at)

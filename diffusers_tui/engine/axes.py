"""A study's axes: what varies across a comparison's lanes, parsed from "KIND=V1,V2,..." as A1111's X/Y/Z plot takes it.

No torch here. An axis is one request field (or the sampler, or a prompt search/replace)
and its values; a comparison's lanes are every combination of its axes' values (x, then y,
then z), each lane the base request with those fields set.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.models.loras import MAX_LORA_WEIGHT
from diffusers_tui.engine.sampling import sampler_options
from diffusers_tui.engine.request import (MAX_CHURN, MAX_CHURN_SIGMA, MAX_GUIDANCE, MAX_NOISE_SCALE, MAX_SEED,
                                          MAX_SHIFT, MAX_STEPS, NOISE_CONVENTIONS)
from diffusers_tui.engine.text import shown

#: What an axis can vary, and the names people type for it.
AXIS_KINDS = ("sampler", "schedule", "steps", "guidance", "seed", "eta", "s_noise", "s_churn", "s_tmin", "s_tmax", "shift",
              "noise", "ensd", "prompt", "lora", "option", "guidance_rescale", "pag_scale")
_ALIASES = {"scheduler": "sampler", "samplers": "sampler", "schedule type": "schedule", "schedule_type": "schedule",
            "cfg": "guidance", "cfg scale": "guidance", "seeds": "seed", "prompt s/r": "prompt", "sr": "prompt",
            "s/r": "prompt", "eta noise seed delta": "ensd", "sigma noise": "s_noise", "s noise": "s_noise",
            "s-noise": "s_noise", "flow shift": "shift", "eta ddim": "eta", "sigma churn": "s_churn",
            "sigma min": "s_tmin", "sigma tmin": "s_tmin", "sigma max": "s_tmax", "sigma tmax": "s_tmax",
            "lora weight": "lora", "lora_weight": "lora", "loras": "lora", "sampler option": "option",
            "sampler_option": "option", "cfg rescale": "guidance_rescale", "guidance rescale": "guidance_rescale",
            "rescale": "guidance_rescale", "pag": "pag_scale", "pag scale": "pag_scale"}
#: Axis kinds that are request fields of their own name (sampler, schedule and prompt are built differently).
FIELD_KINDS = ("guidance", "seed", "eta", "s_noise", "s_churn", "s_tmin", "s_tmax", "shift", "noise", "ensd",
               "guidance_rescale", "pag_scale")
#: Axis kinds whose values are real numbers, with their ranges: (lowest, highest, whether the lowest is allowed).
REAL_KINDS = {"guidance": (0.0, MAX_GUIDANCE, True), "eta": (0.0, MAX_NOISE_SCALE, True),
              "s_noise": (0.0, MAX_NOISE_SCALE, True), "s_churn": (0.0, MAX_CHURN, True),
              "s_tmin": (0.0, MAX_CHURN_SIGMA, True), "s_tmax": (0.0, MAX_CHURN_SIGMA, True), "shift": (0.0, MAX_SHIFT, False),
              "lora": (-MAX_LORA_WEIGHT, MAX_LORA_WEIGHT, True), "guidance_rescale": (0.0, 1.0, True),
              "pag_scale": (0.0, MAX_GUIDANCE, True)}
#: Where an axis's values go, in A1111's order: across, down, then one sub-grid per value.
POSITIONS = ("x", "y", "z")
MAX_VALUES = 64


@dataclass(frozen=True)
class Axis:
    """One thing a study varies, and its values in order (numbers as numbers; a prompt axis keeps the words)."""

    kind: str
    values: tuple
    #: The LoRA a "lora" axis weights ("lora:detail=0,0.5,1"; "" for the request's only LoRA), or the sampler
    #: option an "option" axis sets ("option:r=0.3,0.5").
    target: str = ""

    @property
    def title(self) -> str:
        if self.kind == "lora":
            return f"LoRA {shown(self.target, 40)}" if self.target else "LoRA weight"
        if self.kind == "option":
            return self.target
        return {"sampler": "sampler", "schedule": "schedule type", "steps": "steps", "guidance": "guidance",
                "seed": "seed", "eta": "eta", "s_noise": "s_noise", "s_churn": "s_churn", "s_tmin": "s_tmin",
                "s_tmax": "s_tmax", "shift": "shift", "noise": "noise",
                "ensd": "ENSD", "prompt": "prompt S/R", "guidance_rescale": "guidance rescale",
                "pag_scale": "PAG scale"}[self.kind]

    def label(self, value) -> str:
        """How a value is written on the grid and in the table."""
        if self.kind in REAL_KINDS or self.kind == "option":
            return f"{value:g}"
        if self.kind == "prompt":
            return shown(str(value), 40)
        return str(value)

    def spec(self) -> str:
        """The axis as it is typed: what a saved study records."""
        kind = f"{self.kind}:{self.target}" if self.target else self.kind
        return f"{kind}=" + ",".join(self.label(value) if self.kind in (*REAL_KINDS, "option") else str(value)
                                          for value in self.values)


def parse_axis(text: str, field: str = "axis") -> Axis:
    """ "guidance=3,5,7.5" -> Axis("guidance", (3.0, 5.0, 7.5)); RequestError (naming `field`) says what is wrong."""
    kind, separator, values_text = str(text).partition("=")
    kind, colon, target = kind.partition(":")
    kind = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if colon and (kind not in ("lora", "option") or not target.strip()):
        raise RequestError(field, f"{shown(str(text), 80)!r}: only a LoRA axis and a sampler option's name what "
                                  "they vary, as lora:NAME=0,0.5,1 or option:r=0.3,0.5")
    if kind == "option" and not colon:
        raise RequestError(field, f"name the sampler option: option:NAME=VALUES, e.g. option:r=0.3,0.5 (options: "
                                  f"{', '.join(sampler_options.OPTIONS)})")
    if not separator or kind not in AXIS_KINDS:
        raise RequestError(field, f"{shown(str(text), 80)!r} is not KIND=VALUES, e.g. \"guidance=3,5,7\"; kinds: "
                                  f"{', '.join(AXIS_KINDS)}")
    parts = [part.strip() for part in values_text.split(",") if part.strip()]
    if not parts:
        raise RequestError(field, f"the {kind} axis has no values: give them after '=', separated by commas")
    if kind in ("steps", "seed", "ensd"):
        values = _whole_numbers(kind, parts, field)
    elif kind in REAL_KINDS:
        values = [_real(kind, part, field) for part in parts]
    elif kind == "option":
        try:
            values = [sampler_options.parse(f"{target.strip()}={part}")[1] for part in parts]
        except RequestError as error:
            raise RequestError(field, str(error).split(": ", 1)[-1]) from None
    elif kind == "noise":
        by_lower = {name.lower(): name for name in NOISE_CONVENTIONS}
        unknown = [part for part in parts if part.lower() not in by_lower]
        if unknown:
            raise RequestError(field, f"{shown(unknown[0], 40)!r} is not a noise convention: "
                                      f"{', '.join(NOISE_CONVENTIONS)}")
        values = [by_lower[part.lower()] for part in parts]
    else:
        values = parts
    if len(values) > MAX_VALUES:
        raise RequestError(field, f"the {kind} axis has {len(values)} values; at most {MAX_VALUES}")
    if len(set(values)) != len(values):
        raise RequestError(field, f"the {kind} axis names a value twice")
    return Axis(kind, tuple(values), target.strip())


#: A1111's ranges for whole numbers: "1-5" (every one), "1-10 (+3)" (a step), "1-10 [4]" (a count, spread).
_RANGE = re.compile(r"^([0-9]+)\s*-\s*([0-9]+)(?:\s*\(\s*\+\s*([0-9]+)\s*\)|\s*\[\s*([0-9]+)\s*\])?$")


def _whole_numbers(kind: str, parts: list[str], field: str) -> list[int]:
    high = {"steps": MAX_STEPS, "seed": MAX_SEED, "ensd": MAX_SEED}[kind]
    low = 1 if kind == "steps" else 0
    values: list[int] = []
    for part in parts:
        match = _RANGE.match(part) if part.isascii() else None
        if part.isascii() and part.isdigit():
            found = [int(part)]
        elif match:
            start, end = int(match[1]), int(match[2])
            if end < start:
                raise RequestError(field, f"the range {part!r} runs backwards; write the smaller number first")
            if match[4]:
                count = int(match[4])
                if not 1 <= count <= MAX_VALUES:
                    raise RequestError(field, f"{part!r} asks for {count} values; give 1 to {MAX_VALUES}")
                found = sorted({round(start + (end - start) * i / max(1, count - 1)) for i in range(count)})
            else:
                step = int(match[3] or 1)
                if step < 1 or (end - start) // step + 1 > MAX_VALUES:
                    raise RequestError(field, f"the range {part!r} gives more than {MAX_VALUES} values")
                found = list(range(start, end + 1, step))
        else:
            raise RequestError(field, f"{shown(part, 40)!r} is not a whole number or a range like 1-5 "
                                      f"for the {kind} axis")
        for value in found:
            if not low <= value <= high:
                raise RequestError(field, f"{value} is outside {low} to {high} for the {kind} axis")
        values.extend(found)
    return values


def _real(kind: str, text: str, field: str) -> float:
    low, high, low_allowed = REAL_KINDS[kind]
    try:
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not (low <= value <= high and (low_allowed or value > low)):  # NaN fails this too
        valid = f"from {low:g} to {high:g}" if low_allowed else f"above {low:g}, up to {high:g}"
        name = "LoRA weight" if kind == "lora" else kind
        raise RequestError(field, f"{shown(text, 40)!r} is not {'an' if kind in ('eta', 's_noise', 's_churn', 's_tmin', 's_tmax') else 'a'} {name} {valid}")
    return value


def with_lane_settings(request, settings: tuple):
    """`request` (a GenerationRequest) with a lane's other fields set; a LoRA axis's ("lora", (name, weight))
    weights that LoRA (models.loras.with_lora_weight), a sampler option's ("option", (name, value)) sets it."""
    from dataclasses import replace

    from diffusers_tui.engine.models.loras import with_lora_weight

    request = replace(request, **{name: value for name, value in settings if name not in ("lora", "option")})
    for name, value in settings:
        if name == "lora":
            request = with_lora_weight(request, *value)
        elif name == "option":  # a sampler option's value, in place of the request's own
            options = dict(request.sampler_options)
            options[value[0]] = value[1]
            request = replace(request, sampler_options=tuple(options.items()))
    return request


def replaced_prompt(prompt: str, axis: Axis, value: str) -> str:
    """A1111's prompt search/replace: the axis's first value is searched for, and every occurrence replaced."""
    return prompt.replace(axis.values[0], value)


def check_prompt_axis(prompt: str, axis: Axis, field: str = "axis") -> None:
    if axis.values[0] not in prompt:
        raise RequestError(field, f"prompt S/R: {shown(axis.values[0], 40)!r} (its first value, which is searched "
                                  f"for) is not in the prompt; start the list with a word the prompt has")

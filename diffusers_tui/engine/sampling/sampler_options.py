"""Sampler options: the numeric options some engine samplers take beyond eta, s_noise and churn, as ComfyUI's
sampler nodes expose them (SamplerDPMPP_SDE's r, SamplerSASolver's orders and noise window, SamplerER_SDE's stages).

A request sets them as `sampler_options` ((name, value) pairs); a study varies one as an axis
("option:r=0.3,0.5,0.7"). Each option names the sampler functions that read it: a sampler that does
not read it ignores it, and the note says so, as for eta. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.text import shown

_SDE, _CF, _CM, _PP = "samplers_sde", "samplers_comfy", "samplers_multistep", "samplers_cfgpp"
_SA, _K = "samplers_sa_solver", "samplers_kdiffusion"


@dataclass(frozen=True)
class SamplerOption:
    """One option: its range, whether it is a whole number, its default, and the functions that read it."""

    low: float
    high: float
    whole: bool
    default: str
    about: str
    functions: tuple[str, ...]


OPTIONS = {
    "r": SamplerOption(0.01, 1.0, False, "0.5", "the intermediate point of a step, as a fraction of it in log-SNR",
                       (f"{_SDE}:sample_dpmpp_sde", f"{_CF}:seeds_2")),
    "r_1": SamplerOption(0.01, 1.0, False, "1/3", "SEEDS-3's first stage point", (f"{_CF}:seeds_3",)),
    "r_2": SamplerOption(0.01, 1.0, False, "2/3", "SEEDS-3's second stage point", (f"{_CF}:seeds_3",)),
    "max_stage": SamplerOption(1, 3, True, "3", "ER-SDE's solver stages", (f"{_CF}:er_sde",)),
    "max_order": SamplerOption(1, 4, True, "4 (DEIS: 3)", "the multistep order at most",
                               (f"{_CM}:ipndm", f"{_CM}:ipndm_v", f"{_CM}:deis")),
    "order": SamplerOption(1, 8, True, "4", "LMS's order", (f"{_K}:sample_lms",)),
    "ge_gamma": SamplerOption(0.0, 10.0, False, "2", "gradient estimation's slope-change weight",
                              (f"{_CM}:gradient_estimation", f"{_PP}:gradient_estimation_cfg_pp")),
    "predictor_order": SamplerOption(1, 6, True, "3", "SA-Solver's predictor order",
                                     (f"{_SA}:sa_solver", f"{_SA}:sa_solver_pece")),
    "corrector_order": SamplerOption(0, 6, True, "4", "SA-Solver's corrector order",
                                     (f"{_SA}:sa_solver", f"{_SA}:sa_solver_pece")),
    "sde_start_percent": SamplerOption(0.0, 1.0, False, "0.2", "where SA-Solver's noise starts (fraction of the run)",
                                       (f"{_SA}:sa_solver", f"{_SA}:sa_solver_pece")),
    "sde_end_percent": SamplerOption(0.0, 1.0, False, "0.8", "where SA-Solver's noise ends (fraction of the run)",
                                     (f"{_SA}:sa_solver", f"{_SA}:sa_solver_pece")),
}


def checked(options) -> tuple[tuple[str, float | int], ...]:
    """Request's sampler_options as (name, value) pairs, each known and in range; RequestError names one."""
    if isinstance(options, dict):
        options = tuple(options.items())
    if isinstance(options, (str, bytes)) or not isinstance(options, (list, tuple)):
        raise RequestError("sampler_options", "give sampler options as NAME=VALUE pairs, e.g. r=0.3")
    pairs: dict[str, float | int] = {}
    for item in options:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str):
            raise RequestError("sampler_options", f"{shown(item, 60)!r} is not a NAME=VALUE pair")
        name, value = item
        pairs[name] = check(name, value)
    return tuple(pairs.items())


def check(name: str, value) -> float | int:
    """`value` for option `name`, checked: known, a number, in range, whole where it must be."""
    option = OPTIONS.get(name)
    if option is None:
        raise RequestError("sampler_options", f"{shown(name, 40)!r} is not a sampler option; there are: "
                                              f"{', '.join(OPTIONS)}")
    valid = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
             and option.low <= value <= option.high and (not option.whole or float(value).is_integer()))
    if not valid:
        kind = "a whole number" if option.whole else "a number"
        raise RequestError("sampler_options", f"{name} {shown(value, 30)} is outside what it can be ({option.about}: "
                                              f"{kind} from {option.low:g} to {option.high:g}, default "
                                              f"{option.default})")
    return int(value) if option.whole else float(value)


def parse(text: str) -> tuple[str, float | int]:
    """ "r=0.3" -> ("r", 0.3); RequestError says what is wrong."""
    name, separator, value_text = str(text).partition("=")
    name = name.strip().lower()
    try:
        value = float(value_text) if separator and value_text.strip().isascii() else math.nan
    except ValueError:
        value = math.nan
    if not separator:
        raise RequestError("sampler_options", f"{shown(text, 60)!r} is not NAME=VALUE, e.g. r=0.3")
    return name, check(name, int(value) if math.isfinite(value) and OPTIONS.get(name, OPTIONS["r"]).whole
                       and value.is_integer() else value)


def reads(function_ref: str, name: str) -> bool:
    return function_ref in OPTIONS[name].functions

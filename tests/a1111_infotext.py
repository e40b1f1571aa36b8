"""A1111's published infotext parse logic, written out for the tests (A1111 itself cannot run here).

From A1111 v1.10: `infotext_utils.parse_generation_parameters` (its key-value pattern, prompt and
negative prompt lines), the sampler table (`sd_samplers_kdiffusion` and `sd_samplers_timesteps`,
names and aliases), the schedule table (`sd_schedulers`), and `sd_samplers.get_sampler_and_scheduler`,
which splits an old "Name Karras" spelling and falls back to the first sampler, DPM++ 2M, for a
name it does not know.
"""

from __future__ import annotations

import json
import re

RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")

#: A1111's samplers: name -> (aliases, its "scheduler" option: what Automatic means).
SAMPLERS = {
    "DPM++ 2M": (["k_dpmpp_2m"], "karras"),
    "DPM++ SDE": (["k_dpmpp_sde"], "karras"),
    "DPM++ 2M SDE": (["k_dpmpp_2m_sde"], "exponential"),
    "DPM++ 2M SDE Heun": (["k_dpmpp_2m_sde_heun"], "exponential"),
    "DPM++ 2S a": (["k_dpmpp_2s_a"], "karras"),
    "DPM++ 3M SDE": (["k_dpmpp_3m_sde"], "exponential"),
    "Euler a": (["k_euler_a", "k_euler_ancestral"], None),
    "Euler": (["k_euler"], None),
    "LMS": (["k_lms"], None),
    "Heun": (["k_heun"], None),
    "DPM2": (["k_dpm_2"], "karras"),
    "DPM2 a": (["k_dpm_2_a"], "karras"),
    "DPM fast": (["k_dpm_fast"], None),
    "DPM adaptive": (["k_dpm_ad"], None),
    "Restart": (["restart"], "karras"),
    "DDIM": (["ddim"], None),
    "DDIM CFG++": (["ddim_cfgpp"], None),
    "PLMS": (["plms"], None),
    "UniPC": (["unipc"], None),
    "LCM": (["k_lcm"], None),
}
#: A1111's schedule types: (name, label, aliases).
SCHEDULERS = [
    ("automatic", "Automatic", []), ("uniform", "Uniform", []), ("karras", "Karras", []),
    ("exponential", "Exponential", []), ("polyexponential", "Polyexponential", []),
    ("sgm_uniform", "SGM Uniform", ["SGMUniform"]), ("kl_optimal", "KL Optimal", []),
    ("align_your_steps", "Align Your Steps", []), ("simple", "Simple", []), ("normal", "Normal", []),
    ("ddim", "DDIM", []), ("beta", "Beta", []),
]


def _unquote(text: str) -> str:
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def parse_generation_parameters(infotext: str) -> dict[str, str]:
    """A1111's parse: the last line holds `key: value` pairs; lines before are the prompt and negative prompt."""
    result: dict[str, str] = {}
    prompt, negative, done_with_prompt = "", "", False
    *lines, lastline = infotext.strip().split("\n")
    if len(RE_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    result["Prompt"], result["Negative prompt"] = prompt, negative
    for key, value in RE_PARAM.findall(lastline):
        result[key.strip()] = _unquote(value.strip())
    if "Schedule type" not in result:
        sampler, schedule = get_sampler_and_scheduler(result.get("Sampler"), None)
        result["Sampler"], result["Schedule type"] = sampler, schedule
    return result


def get_sampler_and_scheduler(sampler_name, scheduler_name, *, convert_automatic=True) -> tuple[str, str]:
    """A1111's resolution of a sampler name and schedule label to what it runs."""
    labels = {label: (name, label) for name, label, _aliases in SCHEDULERS}
    found = next((s for s in SCHEDULERS if scheduler_name in (s[0], s[1])), SCHEDULERS[0])
    name = sampler_name or "DPM++ 2M"
    for scheduler in SCHEDULERS:
        for option in [scheduler[1], *scheduler[2]]:
            if name.endswith(" " + option):
                found, name = scheduler, name[: -(len(option) + 1)]
                break
    aliases = {alias: sampler for sampler, (alias_list, _) in SAMPLERS.items() for alias in alias_list}
    sampler = name if name in SAMPLERS else aliases.get(name, "DPM++ 2M")
    if convert_automatic and SAMPLERS[sampler][1] == found[0]:
        found = SCHEDULERS[0]
    assert found[1] in labels
    return sampler, found[1]


def what_a1111_runs(infotext: str) -> tuple[str, str]:
    """(sampler, concrete schedule label) A1111 runs for this infotext: Automatic resolved per sampler."""
    fields = parse_generation_parameters(infotext)
    sampler, schedule = get_sampler_and_scheduler(fields.get("Sampler"), fields.get("Schedule type"),
                                                  convert_automatic=False)
    if schedule == "Automatic":
        automatic = SAMPLERS[sampler][1]
        schedule = next(label for name, label, _ in SCHEDULERS if name == automatic) if automatic else "Uniform"
    return sampler, schedule

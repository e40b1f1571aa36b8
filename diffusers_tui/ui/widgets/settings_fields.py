"""The settings panel's widgets: the fields on screen at start, and those below the fold that mount after it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Checkbox, Input, Label, Select, TextArea
from textual.widgets.option_list import Option

from diffusers_tui.engine import (DEFAULT_PROMPT, LIMITS, describe_range, parse_number, parse_whole, schedule_names,
                                  scheduler_names)
from diffusers_tui.ui.widgets.lora_list import LoraPicker
from diffusers_tui.ui.widgets.sampler_list import SchedulerList

#: Which widget shows a request field (or a comparison's), so a bad value marks the right input.
FIELD_WIDGETS = {"prompt": "#prompt", "negative_prompt": "#negative", "steps": "#steps", "guidance": "#guidance",
                 "seed": "#seed", "width": "#size", "height": "#size", "size": "#size",
                 "preview_every": "#preview-every", "scheduler": "#scheduler", "model": "#model",
                 "compare": "#scheduler", "compare_steps": "#compare-steps", "reference": "#reference", "fps": "#fps",
                 "preview_method": "#preview-method", "schedule": "#schedule", "x axis": "#axis-x",
                 "y axis": "#axis-y", "z axis": "#axis-z", "axis": "#axis-x", "seeds": "#seeds",
                 "lora": "#loras", "loras": "#loras", "init_image": "#init-image", "strength": "#strength",
                 "batch_size": "#batch-size", "batch_count": "#batch-count", "hires_scale": "#hires-scale",
                 "hires_steps": "#hires-steps", "hires_upscaler": "#hires-upscaler", "pag_scale": "#pag-scale"}
#: Inputs that hold one request field each, and how their text reads: "text", "number" or "whole" (in the
#: field's range); a blank one gives nothing, so the request's default holds.
PLAIN_FIELDS = (("#init-image", "init_image", "text"), ("#strength", "strength", "number"),
                ("#batch-size", "batch_size", "whole"), ("#batch-count", "batch_count", "whole"),
                ("#hires-scale", "hires_scale", "number"), ("#hires-steps", "hires_steps", "whole"),
                ("#hires-upscaler", "hires_upscaler", "text"), ("#pag-scale", "pag_scale", "number"))
#: What a plain field shows when a recipe does not give it (blank: the request's default).
PLAIN_DEFAULTS = {selector: "1" if selector in ("#batch-size", "#batch-count") else "" for selector, _, _ in PLAIN_FIELDS}
#: A recipe's fields the panel has no input for: kept from a recipe for the runs that follow it.
RECIPE_EXTRAS = ("noise", "ensd", "eta", "s_noise", "shift", "s_churn", "s_tmin", "s_tmax", "sampler_options",
                 "guidance_rescale", "variation_seed", "variation_strength", "seed_resize_from")
#: Settings the panel has a field for: its fields, not the settings, are what a run uses.
FORM_SETTINGS = ("model", "scheduler", "schedule", "steps", "guidance", "size", "preview", "preview_every", "preview_method")
#: The live preview methods the panel offers, with what each is (none is for the commands).
PREVIEW_METHOD_CHOICES = (("auto: best that fits", "auto"), ("latent: linear map", "latent"),
                          ("taesd: tiny decoder", "taesd"), ("vae: full decode", "vae"))


def read_plain(name: str, kind: str, text: str):
    """A plain field's text as its request value (PLAIN_FIELDS); RequestError names the field and its range."""
    if kind == "whole":
        low, high = LIMITS[name]
        return parse_whole(name, text, int(low), int(high))
    return parse_number(name, text) if kind == "number" else text


def fields_above_the_fold(model: str) -> ComposeResult:
    """Prompt to schedule type: what a 40-row screen shows at start (the first frame)."""
    yield Label("Prompt")
    yield TextArea(DEFAULT_PROMPT, id="prompt", soft_wrap=True)
    yield Label("Negative prompt")
    yield Input(placeholder="what to avoid", id="negative")
    yield Label("Model")
    yield Select([(model, model)], value=model, allow_blank=False, id="model")
    yield Label("mode: text-to-image (loading model...)", id="mode")
    yield Label("Sampler · schedule type · space marks")
    yield Input(placeholder="filter: a name, a tool (comfyui), sde, cfg++...", id="sampler-filter",
                tooltip="narrow the sampler list as you type: words match names, tools and kinds")
    yield SchedulerList(*[Option(name, id=name) for name in scheduler_names()], id="scheduler")
    yield Select([(name, name) for name in schedule_names()], value="Automatic", allow_blank=False,
                 id="schedule", tooltip="A1111's schedule type: Automatic is the sampler's own default, as "
                                        "in A1111; the list offers what the highlighted sampler has")


def fields_below_the_fold() -> list:
    """The fields under the sampler list: off a 40-row screen at start, so they mount after the first frame."""
    return [
        Label("Compare: steps · reference run"),
        Horizontal(
            Input("20", id="compare-steps", tooltip="step counts to race, e.g. 10,20,30"),
            Input(placeholder="DPM++ 2M:100", id="reference",
                  tooltip="a long run to measure every image against: SCHEDULER:STEPS (blank: none)")),
        Checkbox("equal model calls", id="equal-calls",
                 tooltip="second-order schedulers (2 model calls a step) get half the steps"),
        Label("Study axes x · y · z (KIND=VALUES) · seeds"),
        Horizontal(*(Input(placeholder=example, id=f"axis-{place}", classes="axis",
                           tooltip=f"a study axis ({where}): sampler, schedule, steps, guidance, seed, eta, "
                                   "s_noise, s_churn, s_tmin, s_tmax, shift, noise, ensd, prompt (search/replace), lora (a LoRA's weight; lora:NAME=... for one of several) or option:NAME (a sampler option: r, max_order, ...), e.g. guidance=3,5,7, "
                                   "seed=1-4 or eta=0,0.5,1; "
                                   "the marked samplers and the steps above take the free places")
                     for place, where, example in (("x", "across", "guidance=3,7"), ("y", "down", "y"),
                                                   ("z", "sub-grids", "z")))),
        Input("1", id="seeds", tooltip="run every lane on this many seeds counting up from the seed: the table "
                                       "gives means and spreads, and a ranking says where the seeds disagree"),
        Label("Steps · guidance · PAG", id="guidance-label"),
        Horizontal(
            Input("20", id="steps", tooltip=f"denoising steps, {describe_range('steps')}"),
            Input("5.0", id="guidance", tooltip=f"classifier-free guidance, {describe_range('guidance')}"),
            Input(placeholder="off", id="pag-scale",
                  tooltip="perturbed-attention guidance's scale (SD 1.x/2.x, SDXL, SD3); blank or 0: off")),
        Label("Seed"),
        Horizontal(
            Input("0", id="seed", tooltip=f"{describe_range('seed')}; a new random one each run unless locked"),
            Checkbox("lock", id="seed-lock")),
        Label("Size · batch size · batch count"),
        Horizontal(
            Input(placeholder="native", id="size", tooltip="WIDTHxHEIGHT, e.g. 64x64; blank: the model's own"),
            Input("1", id="batch-size", tooltip="images per model call (1 to 16), shown as a grid; seeds count up"),
            Input("1", id="batch-count", tooltip="calls in a row (1 to 100); each image is saved with its own seed")),
        Label("Init image · strength (ctrl+t)"),
        Horizontal(
            Input(placeholder="blank: from noise", id="init-image",
                  tooltip="img2img: a picture to start from, stretched to the size (A1111's \"Just resize\"); "
                          "ctrl+t puts the current result here"),
            Input(placeholder="0.75", id="strength",
                  tooltip="denoising strength, 0 to 1 (A1111's): 0 keeps the picture, 1 starts from full noise")),
        Label("Hires fix: scale · steps · upscaler"),
        Horizontal(
            Input(placeholder="off", id="hires-scale",
                  tooltip="A1111's hires fix: upscale by this (1 to 4) and denoise again at the strength (0.7)"),
            Input(placeholder="same", id="hires-steps", tooltip="the second pass's steps (blank: the steps above)"),
            Input(placeholder="Latent", id="hires-upscaler",
                  tooltip="Latent, Latent (antialiased), Latent (bicubic), Latent (bicubic antialiased), "
                          "Latent (nearest), Latent (nearest-exact), Lanczos or Nearest")),
        Label("LoRAs · NAME:WEIGHT, ... · enter adds"),
        LoraPicker(),
        Label("Preview · every N calls · frames/s"),
        Horizontal(
            Select([("x0 estimate", "x0"), ("noisy", "noisy")], value="x0", allow_blank=False, id="preview"),
            Input("1", id="preview-every",
                  tooltip=f"a preview every N model calls ({describe_range('preview_every')})"),
            Input("15", id="fps", tooltip="live frames per second at most (1 to 60); the newest frame wins")),
        Select(PREVIEW_METHOD_CHOICES, value="auto", allow_blank=False, id="preview-method",
               tooltip="how live frames are decoded; a change applies from the next frame. "
                       "Saved snapshots are always full decodes"),
        Checkbox("save every step too (ctrl+s)", id="save-steps"),
        Button("Generate  ctrl+g", id="generate", variant="primary"),
    ]

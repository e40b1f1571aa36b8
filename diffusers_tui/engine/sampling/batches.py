"""A1111's batches: `batch_size` images in each model call, `batch_count` calls in a row, seeds counting up.

As A1111 1.10's processing.py counts them: image i of the whole run (batch by batch) has seed
`seed + i`; with a variation strength above 0 every image keeps the seed and the variation seed
counts up instead. Each image is kept as a run of its own (its seed, picture and recipe, which
re-runs it alone); the batch's picture is their grid, which is what the live pane shows forming.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.values import LIMITS

#: The largest batch size (A1111's slider stops at 8) and batch count (A1111's: 100).
MAX_BATCH_SIZE, MAX_BATCH_COUNT = (int(LIMITS[name][1]) for name in ("batch_size", "batch_count"))


def applies(request) -> bool:
    return request.batch_size > 1 or request.batch_count > 1


def check_batch(request, check_whole) -> None:
    """The batch fields checked (called by the request, which hands over its number check)."""
    check_whole("batch_size", request.batch_size, 1, MAX_BATCH_SIZE)
    check_whole("batch_count", request.batch_count, 1, MAX_BATCH_COUNT)
    images = request.batch_size * request.batch_count
    top = int(LIMITS["seed"][1])
    if request.batch_size > 1 or request.batch_count > 1:  # every image's seed (or variation seed) must be one
        counted, name = ((request.variation_seed or 0), "variation_seed") if request.variation_strength else \
            (request.seed, "seed")
        if counted + images - 1 > top:
            raise RequestError(name, f"{counted} counts up past 2^64-1 over the batch's {images} images; choose a "
                                     "smaller one")
    if request.batch_size > 1 and (request.variation_strength or request.seed_resize_from is not None):
        raise RequestError("batch_size", "a batch with variation seeds is not run here yet: use a batch count "
                                         "(one image a call) for them")


def call_request(request, call: int):
    """The request of the batch's call `call` (0-based): its first seed, and one call."""
    step = call * request.batch_size
    if request.variation_strength:  # A1111: the seed stays, the variation seed counts up
        return dataclasses.replace(request, batch_count=1,
                                   variation_seed=(request.variation_seed or 0) + step)
    return dataclasses.replace(request, batch_count=1, seed=request.seed + step)


def split(result, images: list) -> tuple:
    """A batch call's images as runs of their own: image i with seed + i, and a recipe that re-runs it alone."""
    request = result.request
    items = []
    for index, image in enumerate(images):
        seed = request.seed + index
        recipe = dict(result.recipe)
        config = dict(recipe.get("scheduler_config") or {})
        if "batch_seeds" in config:  # the engine sampler's noise: this image's seed alone
            config.update(seed=seed, batch_seeds=None)
            recipe["scheduler_config"] = config
        second = dict(recipe.get("hires") or {})
        if "batch_seeds" in (second.get("scheduler_config") or {}):  # a hires pass's sampler likewise
            second["scheduler_config"] = {**second["scheduler_config"], "seed": seed, "batch_seeds": None}
            recipe["hires"] = second
        alone = dataclasses.replace(request, seed=seed, batch_size=1, batch_count=1)
        items.append(dataclasses.replace(result, request=alone, image=image, recipe=recipe, frames=(), batch=(),
                                         latents=None))
    return tuple(items)


def grid(images: list):
    """The images side by side, in rows of ceil(√n): the batch's one picture."""
    from PIL import Image

    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    width, height = images[0].size
    sheet = Image.new("RGB", (columns * width, rows * height))
    for index, image in enumerate(images):
        sheet.paste(image, ((index % columns) * width, (index // columns) * height))
    return sheet


def cell(sheet, count: int, index: int):
    """Image `index`'s place in a grid of `count` laid out by `grid` (a batch's picture, or a frame of it)."""
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    width, height = sheet.size[0] // columns, sheet.size[1] // rows
    left, top = (index % columns) * width, (index // columns) * height
    return sheet.crop((left, top, left + width, top + height))


def run_batches(request, run_call: Callable, on_step) -> object:
    """Every call of the batch, one after the other, reported to `on_step` as one run; returns the whole
    batch's result (its `batch`: every image's own run; `image`: their grid)."""
    results, calls, total = [], 0, 0
    for call in range(request.batch_count):
        left = request.batch_count - call

        def forward(snapshot, before=calls, done_total=total, left=left) -> None:
            on_step(dataclasses.replace(snapshot, step=before + snapshot.step,
                                        total=done_total + snapshot.total * left))

        result = run_call(call_request(request, call), forward)
        results.append(result)
        calls, total = calls + result.model_calls, total + result.total_calls
        if result.cancelled or result.stopped:
            break
    items = tuple(item for result in results for item in (result.batch or (result,)) if item.image is not None)
    if not items:
        return dataclasses.replace(results[-1], request=request, model_calls=calls, total_calls=total)
    # Its frames are every call's steps, as the engine collects them from on_step.
    return dataclasses.replace(results[0], request=request, image=grid([item.image for item in items]), batch=items,
                               model_calls=calls, total_calls=total, latents=None,
                               cancelled=results[-1].cancelled, stopped=results[-1].stopped,
                               elapsed_s=sum(result.elapsed_s for result in results))

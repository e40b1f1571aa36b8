"""Saving a scheduler comparison: a labelled grid, every image with its recipe, the table.

Everything goes into a new folder `outputs/YYYY-MM-DD/NNNNN-compare-<seed>/` claimed with
an atomic mkdir (never reused): `grid.png` (schedulers down, step counts across, like an
X/Y plot), one PNG per run with its own metadata (and the reference's), `table.csv` and
`table.json`. One line in `index.jsonl` points at the folder.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
from pathlib import Path

from diffusers_tui.engine.comparison import DISTANCE_NAME, ComparisonResult, LaneResult
from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.files import outputs
from diffusers_tui.engine.files.recipe import png_info

#: Grid cells are at least this many pixels wide: a 64 px demo image stays readable.
MIN_CELL = 128
LABEL_HEIGHT = 18


def save_comparison(result: ComparisonResult, outputs_dir: str | os.PathLike,
                    today: _dt.date | None = None) -> Path:
    """Write `result` into a new comparison folder; returns the folder."""
    root = Path(outputs_dir).expanduser()
    day = (today or _dt.date.today()).isoformat()
    base = result.request.base
    try:
        (root / day).mkdir(parents=True, exist_ok=True)
        folder = outputs.claim_folder(root / day, f"compare-{base.seed}")
        files = {}
        for lane_result in [*result.lanes, *([result.reference] if result.reference else [])]:
            image = lane_result.result.shown_image
            if image is None:
                continue
            request, recipe = lane_result.result.request, dict(lane_result.result.recipe)
            recipe["cancelled"] = lane_result.result.cancelled
            stem = f"{outputs.slug(lane_result.lane.scheduler)}-{request.steps}"
            if lane_result is result.reference:
                stem = "reference-" + stem
            path = outputs.write_png_atomically(image, folder, stem, png_info(request, recipe))
            files[id(lane_result)] = path.name
        outputs.write_into_own_folder(grid_image(result), folder / "grid.png")
        rows = result.table()
        for row, lane_result in zip(rows, result.lanes):
            row["file"] = files.get(id(lane_result))
        table = {
            "prompt": base.prompt, "negative_prompt": base.negative_prompt, "model": base.model,
            "seed": base.seed, "guidance": base.guidance, "batched": result.batched,
            "equal_calls": result.request.equal_calls, "distance": DISTANCE_NAME,
            "reference": ({"scheduler": result.reference.lane.scheduler, "steps": result.reference.lane.steps,
                           "file": files.get(id(result.reference))} if result.reference else None),
            "elapsed_s": round(result.elapsed_s, 3), "runs": rows,
        }
        outputs.write_into_own_folder(json.dumps(table, indent=2, ensure_ascii=False).encode(), folder / "table.json")
        outputs.write_into_own_folder(_csv(rows), folder / "table.csv")
        outputs.append_index(root, {
            "path": str(folder.relative_to(root)), "kind": "comparison",
            "time": _dt.datetime.now().isoformat(timespec="seconds"), "prompt": base.prompt,
            "model": base.model, "seed": base.seed,
            "schedulers": sorted({lane.scheduler for lane in result.request.lanes}),
            "steps": sorted({lane.steps for lane in result.request.lanes}),
        })
    except OSError as error:
        raise OutputError(f"could not save the comparison into {root}: {outputs.describe_os_error(error)}") from error
    return folder


def _csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["scheduler"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def grid_image(result: ComparisonResult):
    """Schedulers down, step counts across, each cell labelled; the reference below."""
    from PIL import Image, ImageDraw

    schedulers = list(dict.fromkeys(lane.lane.scheduler for lane in result.lanes))
    step_counts = list(dict.fromkeys(lane.lane.steps for lane in result.lanes))
    cells = {(lane.lane.scheduler, lane.lane.steps): lane for lane in result.lanes}
    sample = next((image for lane in result.lanes if (image := lane.result.shown_image) is not None), None)
    width, height = sample.size if sample is not None else (64, 64)
    scale = max(1, -(-MIN_CELL // width))
    cell_w, cell_h = width * scale, height * scale
    label_w = 7 * max(len(name) for name in [*schedulers, "reference"]) + 12
    rows = len(schedulers) + (1 if result.reference else 0)
    sheet = Image.new("RGB", (label_w + cell_w * len(step_counts), LABEL_HEIGHT + rows * (cell_h + LABEL_HEIGHT)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for column, steps in enumerate(step_counts):
        draw.text((label_w + column * cell_w + 4, 3), f"{steps} steps", fill="black")
    for row, name in enumerate(schedulers + (["reference"] if result.reference else [])):
        top = LABEL_HEIGHT + row * (cell_h + LABEL_HEIGHT)
        draw.text((4, top + cell_h // 2), name, fill="black")
        lanes = ([result.reference] if name == "reference" and result.reference and row == len(schedulers)
                 else [cells.get((name, steps)) for steps in step_counts])
        for column, lane in enumerate(lanes):
            if lane is None or (image := lane.result.shown_image) is None:
                continue
            left = label_w + column * cell_w
            sheet.paste(image.convert("RGB").resize((cell_w, cell_h), Image.NEAREST), (left, top))
            caption = _caption(lane) if lane is not result.reference else f"{lane.lane.scheduler}, {lane.lane.steps} steps"
            draw.text((left + 2, top + cell_h + 3), caption, fill="black")
    return sheet


def _caption(lane: LaneResult) -> str:
    """Under a cell: its model calls and distance (the row and column say the rest)."""
    result = lane.result
    caption = f"{result.model_calls} calls"
    if lane.distance is not None:
        caption += f", rmse {lane.distance:.1f}"
    if lane.lane is not None and result.request.steps != lane.lane.steps:
        caption += f" ({result.request.steps} steps)"
    return caption

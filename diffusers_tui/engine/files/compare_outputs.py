"""Saving a scheduler comparison: a labelled grid, every image with its recipe, the table.

Everything goes into a new folder `outputs/YYYY-MM-DD/NNNNN-compare-<seed>/` claimed with
an atomic mkdir (never reused): `grid.png` (a study's x values across, y down and one
sub-grid per z value, as A1111's X/Y/Z plot; a plain comparison's schedulers down, step counts across), one PNG per run with its own metadata (and the reference's), `table.csv` and
`table.json`. One line in `index.jsonl` points at the folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from diffusers_tui.engine.comparison import (DISTANCE_NAME, OWN_REFERENCE, ComparisonResult, LaneResult,
                                             settings_labels)
from diffusers_tui.engine.errors import OutputError
from diffusers_tui.engine.files import outputs, study_figures
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
        for lane_result in [*result.lanes, *result.references]:
            image = lane_result.result.shown_image
            if image is None:
                continue
            request, recipe = lane_result.result.request, dict(lane_result.result.recipe)
            recipe["cancelled"] = lane_result.result.cancelled
            stem = f"{outputs.slug(lane_result.lane.scheduler)}-{request.steps}"
            if lane_result.lane.settings:  # a study's other fields: "euler-8-guidance-7-seed-3"
                stem += "-" + outputs.slug(" ".join(settings_labels(result.request, lane_result.lane.settings)), 60)
            if lane_result in result.references:
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
            "reference": _reference_record(result, files),
            "axes": {place: axis.spec() for place, axis in zip("xyz", result.request.axes) if axis is not None},
            "references": [{"scheduler": reference.lane.scheduler, "steps": reference.lane.steps,
                            "settings": dict(reference.lane.settings), "file": files.get(id(reference))}
                           for reference in result.references],
            "elapsed_s": round(result.elapsed_s, 3), "runs": rows,
        }
        if result.request.seeds > 1:
            table.update(seeds=result.request.seeds, summary=result.summary(), ranking=result.ranking())
            outputs.write_into_own_folder(study_figures.rows_csv(table["summary"]), folder / "summary.csv")
        outputs.write_into_own_folder(json.dumps(table, indent=2, ensure_ascii=False).encode(), folder / "table.json")
        outputs.write_into_own_folder(study_figures.rows_csv(rows), folder / "table.csv")
        study_figures.save_figures(result, folder)
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


def _reference_record(result: ComparisonResult, files: dict) -> dict | None:
    """What the runs were measured against: one long run, or each run's own at a multiple of its steps."""
    reference = result.request.reference
    if reference is None or result.reference is None:
        return None
    if reference.scheduler == OWN_REFERENCE:
        return {"own_runs_at_times_the_steps": reference.steps}
    return {"scheduler": reference.scheduler, "steps": reference.steps, "file": files.get(id(result.reference))}


def grid_image(result: ComparisonResult):
    """A1111's X/Y/Z layout: x values across, y down, one sub-grid per z value side by side, each titled;
    under each column, its reference run where the column has one reference (see reference_row)."""
    from PIL import Image, ImageDraw

    x_axis, y_axis, z_axis = result.request.axes if result.request.axes else (None, None, None)
    columns, rows, grids = (len(axis.values) if axis is not None else 1 for axis in (x_axis, y_axis, z_axis))
    # Under --seeds, the grid shows each cell's first seed; the table has them all.
    cells = {(lane.lane.at or (0, 0, 0))[:3]: lane for lane in result.lanes if lane.lane.at[3:] in ((), (0,))}
    sample = next((image for lane in result.lanes if (image := lane.result.shown_image) is not None), None)
    width, height = sample.size if sample is not None else (64, 64)
    scale = max(1, -(-MIN_CELL // width))
    cell_w, cell_h = width * scale, height * scale
    row_names = [_axis_text(y_axis, i) for i in range(rows)]
    label_w = 7 * max(len(name) for name in [*row_names, "reference"]) + 12
    references = [reference_row(result, z) for z in range(grids)]
    has_reference_row = any(row is not None for row in references)
    title_h = LABEL_HEIGHT if z_axis is not None else 0
    grid_w = label_w + cell_w * columns
    grid_h = title_h + LABEL_HEIGHT + (rows + has_reference_row) * (cell_h + LABEL_HEIGHT)
    sheet = Image.new("RGB", (grids * grid_w + (grids - 1) * GRID_GAP, grid_h), "white")
    draw = ImageDraw.Draw(sheet)
    for z in range(grids):
        origin = z * (grid_w + GRID_GAP)
        if z_axis is not None:
            draw.text((origin + label_w, 3), _axis_text(z_axis, z), fill="black")
        for column in range(columns):
            draw.text((origin + label_w + column * cell_w + 4, title_h + 3), _axis_text(x_axis, column), fill="black")
        for row in range(rows + has_reference_row):
            top = title_h + LABEL_HEIGHT + row * (cell_h + LABEL_HEIGHT)
            is_reference = row == rows
            draw.text((origin + 4, top + cell_h // 2), "reference" if is_reference else row_names[row], fill="black")
            for column in range(columns):
                lane = (references[z] or [None] * columns)[column] if is_reference else cells.get((column, row, z))
                if lane is None or (image := lane.result.shown_image) is None:
                    continue
                left = origin + label_w + column * cell_w
                sheet.paste(image.convert("RGB").resize((cell_w, cell_h), Image.NEAREST), (left, top))
                caption = (f"{lane.lane.scheduler}, {lane.lane.steps} steps" if is_reference else _caption(lane))
                draw.text((left + 2, top + cell_h + 3), caption, fill="black")
    return sheet


#: Pixels between a study's sub-grids (one per z value).
GRID_GAP = 24


def _axis_text(axis, index: int) -> str:
    """A row's, column's or sub-grid's label: the value, with what it is unless the values say it."""
    if axis is None:
        return ""
    value = axis.label(axis.values[index])
    if axis.kind == "lora":  # "LoRA detail-2: 0.5": the name may end in a digit
        return f"{axis.title}: {value}"
    return value if axis.kind in ("sampler", "schedule", "prompt", "noise") else f"{value} {axis.title}" \
        if axis.kind == "steps" else f"{axis.title} {value}"


def reference_row(result: ComparisonResult, z: int) -> list | None:
    """Sub-grid `z`'s reference under each column, when every row of the column shares one; else None
    (a y axis that changes guidance, seed or prompt gives each row its own: they are saved beside the grid)."""
    if not result.references:
        return None
    by_column: dict[int, set] = {}
    for lane in result.lanes:
        x, _, lane_z = (lane.lane.at or (0, 0, 0))[:3]
        if lane_z == z and lane.lane.at[3:] in ((), (0,)):
            by_column.setdefault(x, set()).add(result.request.reference_key(lane.lane))
    if any(len(keys) > 1 for keys in by_column.values()):
        return None
    columns = max(by_column, default=-1) + 1
    by_key = {reference.lane: reference for reference in result.references}
    return [by_key.get(next(iter(by_column[x]))) if x in by_column else None for x in range(columns)]


def _caption(lane: LaneResult) -> str:
    """Under a cell: its model calls and distance (the row and column say the rest)."""
    result = lane.result
    caption = f"{result.model_calls} calls"
    if lane.distance is not None:
        caption += f", rmse {lane.distance:.1f}"
    if lane.lane is not None and result.request.steps != lane.lane.steps:
        caption += f" ({result.request.steps} steps)"
    return caption

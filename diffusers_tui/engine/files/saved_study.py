"""A saved comparison read back for the app: its table and its figures' data (what study_figures wrote).

The files are untrusted (anyone can edit an outputs folder): each is read bounded, must be the
JSON object this tool writes, and every number must be finite; a figure file that is missing (a
comparison saved before figures were) is an empty figure, one that is damaged is named in `problems`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from diffusers_tui.engine.errors import UserFacingError
from diffusers_tui.engine.files.untrusted import read_bounded
from diffusers_tui.engine.text import shown

#: The largest table or figure file read back (a study of 256 lanes at 1000 steps is about 10 MB).
MAX_STUDY_FILE_BYTES = 32 * 1024 * 1024
#: Each figure's rows: the fields read back, and whether each is a number (else text).
FIGURE_FIELDS = {
    "convergence": {"series": False, "steps": True, "model_calls": True, "seeds": True, "rmse": True,
                    "rmse_spread": True, "latent_l2": True, "latent_l2_spread": True, "one_minus_ssim": True,
                    "one_minus_ssim_spread": True},
    "schedules": {"lane": False, "steps": True, "step": True, "sigma": True},
    "trajectories": {"lane": False, "series": False, "steps": True, "fraction": True, "distance": True},
}


@dataclass
class SavedStudy:
    """What a comparison folder holds, as the app shows it."""

    folder: Path
    grid: Path
    #: table.json's header fields (prompt, model, seed, axes, reference...) and its runs.
    table: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # name -> rows
    problems: list = field(default_factory=list)


def read_study(folder: str | os.PathLike) -> SavedStudy:
    """The comparison saved in `folder`; UserFacingError when it has no readable table."""
    folder = Path(folder)
    table = _read_json(folder / "table.json", "the comparison's table")
    if not isinstance(table, dict) or not isinstance(table.get("runs"), list):
        raise UserFacingError(f"{shown(str(folder / 'table.json'))} is not a comparison table this tool wrote")
    study = SavedStudy(folder, folder / "grid.png", {k: v for k, v in table.items() if k != "runs"},
                       [row for row in table["runs"] if isinstance(row, dict)])
    for name, fields in FIGURE_FIELDS.items():
        path = folder / f"{name}.json"
        if not path.exists():
            study.figures[name] = []
            continue
        try:
            data = _read_json(path, f"the {name} figure's data")
            study.figures[name] = _rows(data, name, fields)
        except UserFacingError as error:
            study.figures[name] = []
            study.problems.append(str(error))
    return study


def _read_json(path: Path, what: str):
    try:
        return json.loads(read_bounded(path, MAX_STUDY_FILE_BYTES, what).decode("utf-8"))
    except UserFacingError:
        raise
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deep
        raise UserFacingError(f"cannot read {what} ({shown(str(path))}): {shown(str(error), 200)}") from None


def _rows(data, name: str, fields: dict[str, bool]) -> list[dict]:
    if not isinstance(data, dict) or data.get("figure") != name or not isinstance(data.get("rows"), list):
        raise UserFacingError(f"{name}.json is not the {name} figure's data this tool writes")
    rows = []
    for row in data["rows"]:
        if not isinstance(row, dict):
            raise UserFacingError(f"{name}.json has a row that is not an object")
        kept = {}
        for key, numeric in fields.items():
            value = row.get(key)
            if numeric:
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value)):
                    raise UserFacingError(f"{name}.json: {key} = {shown(repr(value), 40)} is not a finite number")
            elif not isinstance(value, str):
                raise UserFacingError(f"{name}.json: {key} is not text")
            kept[key] = value
        rows.append(kept)
    return rows

"""A comparison's figures, each drawn with matplotlib as PNG and SVG beside its data as CSV and JSON.

  convergence   error against model calls per sampler, log-log: RMSE in pixels, L2 in latent space and
                1 - SSIM (engine.study_metrics states each), a line per sampler (and per value of the
                study's other axes), the mean over --seeds with the spread as error bars;
  schedules     each lane's σ against its step, σ on a log scale (the last σ, 0, is left off the axis);
  trajectories  each lane's distance from its x0 estimate to the reference's final latent, against the
                fraction of its model calls spent (the first seed's lanes under --seeds).

The data functions are what the app's plots draw too; they need no matplotlib.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from diffusers_tui.engine.comparison import ComparisonResult, LaneResult, mean, sample_spread, settings_labels
from diffusers_tui.engine.files import outputs

#: The convergence figure's panels: (metric in LaneResult.metrics, axis label, turned into an error).
CONVERGENCE_METRICS = (("rmse", "RMSE to reference (0-255)", lambda value: value),
                       ("latent_l2", "L2 to reference's final latent", lambda value: value),
                       ("ssim", "1 - SSIM to reference", lambda value: 1.0 - value))


def series_label(result: ComparisonResult, lane: LaneResult, with_steps: bool = False) -> str:
    """A line's name: the sampler, and the values of the study's other axes (not the seed under --seeds)."""
    settings = tuple((name, value) for name, value in lane.lane.settings
                     if not (name == "seed" and result.request.seeds > 1))
    parts = [lane.lane.scheduler, *([f"{lane.lane.steps} steps"] if with_steps else []),
             *settings_labels(result.request, settings)]
    return " · ".join(parts)


def convergence_data(result: ComparisonResult) -> list[dict]:
    """One point per study cell with a reference: its series, model calls, and each metric's mean and spread."""
    cells: dict[tuple, list[LaneResult]] = {}
    for lane in result.lanes:
        if lane.metrics and not lane.result.cancelled:
            key = (series_label(result, lane), lane.result.request.steps)
            cells.setdefault(key, []).append(lane)
    points = []
    for (series, steps), members in cells.items():
        point = {"series": series, "steps": steps,
                 "model_calls": round(mean([lane.result.model_calls for lane in members]), 2), "seeds": len(members)}
        for name, _, as_error in CONVERGENCE_METRICS:
            values = [as_error(lane.metrics[name]) for lane in members if name in lane.metrics]
            key = "one_minus_ssim" if name == "ssim" else name
            point[key] = round(mean(values), 6) if values else None
            point[key + "_spread"] = round(sample_spread(values), 6) if values else None
        points.append(point)
    return sorted(points, key=lambda point: (point["series"], point["model_calls"]))


def schedule_data(result: ComparisonResult) -> list[dict]:
    """Each distinct σ schedule with the samplers that step through it ("Euler, Euler a"), at every step."""
    samplers_of: dict[tuple, list[str]] = {}
    for lane in [*result.lanes, *result.references]:
        if lane.sigmas:
            names = samplers_of.setdefault((lane.result.request.steps, tuple(round(s, 6) for s in lane.sigmas)), [])
            if lane.lane.scheduler not in names:
                names.append(lane.lane.scheduler)
    rows = []
    for (steps, sigmas), names in samplers_of.items():
        label = f"{', '.join(names)} · {steps} steps"
        rows.extend({"lane": label, "steps": steps, "step": step, "sigma": sigma} for step, sigma in enumerate(sigmas))
    return rows


def trajectory_data(result: ComparisonResult) -> list[dict]:
    """Each lane's trajectory (the first seed's lanes under --seeds)."""
    rows = []
    for lane in result.lanes:
        if lane.lane.at[3:] not in ((), (0,)):
            continue
        label, series = series_label(result, lane, with_steps=True), series_label(result, lane)
        rows.extend({"lane": label, "series": series, "steps": lane.result.request.steps,
                     "fraction": round(fraction, 6), "distance": round(distance, 6)}
                    for fraction, distance in lane.trajectory)
    return rows


def save_figures(result: ComparisonResult, folder: Path) -> list[str]:
    """Every figure that has data, as NAME.png, NAME.svg, NAME.csv and NAME.json in `folder`; their names."""
    written = []
    for name, rows, draw in (("convergence", convergence_data(result), _draw_convergence),
                             ("schedules", schedule_data(result), _draw_schedules),
                             ("trajectories", trajectory_data(result), _draw_trajectories)):
        if not rows:
            continue
        figure = draw(rows, result)
        for extension in ("png", "svg"):
            buffer = io.BytesIO()
            figure.savefig(buffer, format=extension, dpi=110, bbox_inches="tight")
            outputs.write_into_own_folder(buffer.getvalue(), folder / f"{name}.{extension}")
        _close(figure)
        outputs.write_into_own_folder(rows_csv(rows), folder / f"{name}.csv")
        outputs.write_into_own_folder(json.dumps({"figure": name, "rows": rows}, indent=1).encode(),
                                      folder / f"{name}.json")
        written.append(name)
    return written


def _by(rows: list[dict], key: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def _new_figure(columns: int = 1):
    # A Figure of its own, not pyplot's: no display backend and no global figure list (this may run in a worker).
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2 * columns, 4.2))
    return figure, [figure.add_subplot(1, columns, index + 1) for index in range(columns)]


def _close(figure) -> None:
    figure.clear()


def _colours(names) -> dict[str, object]:
    """One colour per name, from matplotlib's 20-colour qualitative map (then round again)."""
    from matplotlib import colormaps

    palette = colormaps["tab20"].colors if len(names) > 10 else colormaps["tab10"].colors
    return {name: palette[index % len(palette)] for index, name in enumerate(names)}


def _series_in_lane_order(result: ComparisonResult) -> list[str]:
    """Every series, in the order the lanes have them: so a sampler has the same colour in every figure."""
    return list(dict.fromkeys(series_label(result, lane) for lane in result.lanes))


#: Line styles for a series' step counts, fewest steps first.
_DASHES = ("-", "--", ":", "-.")


def _draw_convergence(rows: list[dict], result: ComparisonResult):
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    figure, axes = _new_figure(len(CONVERGENCE_METRICS))
    colours = _colours(_series_in_lane_order(result))
    calls = sorted({point["model_calls"] for point in rows})
    for axis, (name, title, _) in zip(axes, CONVERGENCE_METRICS):
        key = "one_minus_ssim" if name == "ssim" else name
        for series, points in _by(rows, "series").items():
            kept = [point for point in points if point[key] is not None and point[key] > 0]
            if not kept:
                continue
            values = [point[key] for point in kept]
            # ± one sample standard deviation over the seeds; below, clipped short of zero (a log axis).
            spread = [point[key + "_spread"] for point in kept]
            bars = [[min(s, 0.9 * v) for s, v in zip(spread, values)], spread] if result.request.seeds > 1 else None
            axis.errorbar([point["model_calls"] for point in kept], values, yerr=bars, marker="o", markersize=3,
                          capsize=2, label=series, color=colours[series])
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(_spaced(calls))
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("model calls")
        axis.set_title(title, fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    else:  # every lane is its own reference (or equal to it): a log axis has nothing to draw
        axes[0].text(0.5, 0.5, "every lane equals its reference: no error to draw", ha="center", va="center",
                     transform=axes[0].transAxes, fontsize=8)
    seeds = (f", mean over {result.request.seeds} seeds (bars: ± one standard deviation)"
             if result.request.seeds > 1 else "")
    figure.suptitle(f"error against model calls{seeds}", fontsize=10)
    return figure


def _draw_schedules(rows: list[dict], result: ComparisonResult):
    figure, (axis,) = _new_figure()
    lanes = _by(rows, "lane")
    colours = _colours(list(lanes))
    for lane, points in lanes.items():
        kept = [point for point in points if point["sigma"] > 0]
        axis.plot([point["step"] for point in kept], [point["sigma"] for point in kept], marker="o", markersize=3,
                  label=lane, color=colours[lane])
    _finish_log_axis(axis, "step", "σ", "noise level at each step")
    return figure


def _draw_trajectories(rows: list[dict], result: ComparisonResult):
    figure, (axis,) = _new_figure()
    colours = _colours(_series_in_lane_order(result))
    step_counts = sorted({row["steps"] for row in rows})
    for lane, points in _by(rows, "lane").items():  # a colour per sampler, a dash per step count
        first = points[0]
        axis.plot([point["fraction"] for point in points], [point["distance"] for point in points], label=lane,
                  color=colours[first["series"]], linestyle=_DASHES[step_counts.index(first["steps"]) % len(_DASHES)])
    _finish_log_axis(axis, "fraction of model calls spent", "L2 from x0 estimate to reference's final latent", "where each run settles")
    return figure


def _finish_log_axis(axis, x_label: str, y_label: str, title: str) -> None:
    """A lines figure's y axis on a log scale, its labels, grid and legend."""
    axis.set_yscale("log")
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.set_title(title, fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


def rows_csv(rows: list[dict], empty_header: str = "scheduler") -> bytes:
    """Rows of one shape as CSV, the first row's keys as the header (`empty_header` alone when there are none)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [empty_header])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _spaced(calls: list[int], gap: float = 0.08) -> list[int]:
    """Tick positions on a log axis at least `gap` decades apart (15 and 16 calls would print as "1516")."""
    kept: list[int] = []
    for value in calls:
        if not kept or math.log10(value) - math.log10(kept[-1]) >= gap:
            kept.append(value)
    return kept

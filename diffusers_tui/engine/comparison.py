"""Scheduler comparisons and studies: what to race (lanes), what came back, and the results table.

No torch here: the app builds and checks a comparison before the heavy libraries load.
A lane is the base request with its scheduler, step count and any other fields a study's
axes set (guidance, seed, a prompt search/replace...); lanes that set none of those share
the base request's prompt and seed, so they start from the same noise. A reference run is
made once per distinct set of those other fields, and each lane is measured against its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.request import MAX_STEPS, GenerationRequest, GenerationResult, StepSnapshot
from diffusers_tui.engine.text import shown

MAX_LANES = 256
#: The distance in the table: root mean square difference of the final RGB images
#: against the reference image, in 0-255 pixel units (0 = identical).
DISTANCE_NAME = "RMSE to reference (0-255)"


@dataclass(frozen=True)
class Lane:
    """One run of a comparison: a registry scheduler at a step count, and the other fields its study sets."""

    scheduler: str
    steps: int
    #: Other request fields, as (name, value) pairs in axis order: (("guidance", 7.0), ("seed", 3)).
    settings: tuple = ()
    #: Where the lane sits on its study's axes (x, y, z value indices); not part of what the lane runs.
    at: tuple = field(default=(), compare=False)

    @property
    def label(self) -> str:
        extra = "".join(f" · {setting_label(name, value)}" for name, value in self.settings)
        return f"{self.scheduler} · {self.steps}{extra}"


def setting_label(name: str, value) -> str:
    """A lane's other field, short: "guidance 7", "seed 3", a prompt shortened."""
    if name == "prompt":
        return f"prompt {shown(str(value), 30)!r}"
    if name in ("lora", "option"):
        return f"{'LoRA ' if name == 'lora' else ''}{shown(value[0], 30)} {value[1]:g}"
    if isinstance(value, float):
        return f"{name} {value:g}"
    return f"{name} {value}"


@dataclass(frozen=True)
class ComparisonRequest:
    """Race `lanes` on `base`'s prompt and seed; optionally against a long reference run."""

    base: GenerationRequest
    lanes: tuple[Lane, ...]
    #: Give second-order schedulers (two model calls a step) half the steps, so every
    #: lane spends about the same number of model calls.
    equal_calls: bool = False
    #: A long run whose final image every lane is measured against (see DISTANCE_NAME).
    reference: Lane | None = None
    #: Batch lanes that need a model call in the same round into one UNet call.
    batch: bool = True
    #: The study's axes as placed on the grid: (x, y, z), each an engine.axes.Axis or None.
    axes: tuple = (None, None, None)
    #: Seeds each study cell runs on, counting up from the base seed (a lane's fourth coordinate says which).
    seeds: int = 1

    def __post_init__(self) -> None:
        from diffusers_tui.engine.sampling import registry as schedulers

        if not self.lanes:
            raise RequestError("compare", "mark at least one scheduler to compare")
        if len(self.lanes) > MAX_LANES:
            raise RequestError("compare", f"{len(self.lanes)} runs is more than {MAX_LANES}; mark fewer")
        # Each lane names its sampler and schedule type in one label: "DPM++ 2M Karras"; a bare
        # sampler name runs on the base request's schedule type.
        object.__setattr__(self, "lanes", tuple(self._labelled(lane) for lane in self.lanes))
        if self.reference is not None and self.reference.scheduler != OWN_REFERENCE:
            object.__setattr__(self, "reference", self._labelled(self.reference))
        if not any(self.axes) and not any(lane.at for lane in self.lanes):
            self._place_plainly()
        for lane in (*self.lanes, *([self.reference] if self.reference else [])):
            if isinstance(lane.steps, bool) or not isinstance(lane.steps, int) or not 1 <= lane.steps <= MAX_STEPS:
                raise RequestError("compare_steps", f"{lane.steps!r} steps is outside 1 to {MAX_STEPS}")
        if len(set(self.lanes)) != len(self.lanes):
            raise RequestError("compare", "the same scheduler and step count is marked twice")
        self.lane_requests()  # every lane's fields checked now, by the request itself (RequestError names one)
        if self.equal_calls:  # halving can make two marked lanes one: 3 and 4 steps of Heun both run 2
            ran: dict[tuple[str, int], int] = {}
            for lane, request in zip(self.lanes, self.lane_requests()):
                key = (lane.scheduler, request.steps, lane.settings)
                if key in ran:
                    raise RequestError("compare", f"with equal model calls, {lane.scheduler} at {ran[key]} and "
                                                  f"{lane.steps} steps both run {request.steps} steps; mark step "
                                                  "counts that stay apart when halved, or turn equal calls off")
                ran[key] = lane.steps

    def _labelled(self, lane: Lane) -> Lane:
        from diffusers_tui.engine.sampling import registry as schedulers

        if schedulers.is_model_default(lane.scheduler):
            return replace(lane, scheduler=schedulers.MODEL_DEFAULT)
        entry, schedule = schedulers.lane_choice(lane.scheduler, self.base.schedule)  # a bad name says why
        return replace(lane, scheduler=schedulers.label(entry, schedule))

    def _place_plainly(self) -> None:
        """Lanes given without axes (a plain comparison): samplers down, step counts across."""
        from diffusers_tui.engine.axes import Axis

        samplers = tuple(dict.fromkeys(lane.scheduler for lane in self.lanes))
        counts = tuple(dict.fromkeys(lane.steps for lane in self.lanes))
        object.__setattr__(self, "axes", (Axis("steps", counts), Axis("sampler", samplers), None))
        object.__setattr__(self, "lanes", tuple(replace(lane, at=(counts.index(lane.steps),
                                                                   samplers.index(lane.scheduler), 0))
                                                for lane in self.lanes))

    def axis_columns(self) -> list[str]:
        """The table's columns beyond sampler and steps: each other axis by its title, and the seed over many."""
        return [axis.title for axis in self.axes if axis is not None and axis.kind not in ("sampler", "steps")] + (
            ["seed"] if self.seeds > 1 else [])

    def reference_lanes(self) -> list[Lane]:
        """The reference runs: the reference once for each distinct set of the lanes' other fields; or, with
        an OWN_REFERENCE reference ("4x"), each lane's own sampler at that many times its steps."""
        if self.reference is None:
            return []
        if self.reference.scheduler == OWN_REFERENCE:
            return list(dict.fromkeys(self.reference_key(lane) for lane in self.lanes))
        conditions = dict.fromkeys(lane.settings for lane in self.lanes)
        return [replace(self.reference, settings=settings) for settings in conditions]

    def reference_key(self, lane: Lane) -> Lane:
        """The reference lane `lane` is measured against (equal to one of reference_lanes)."""
        if self.reference is not None and self.reference.scheduler == OWN_REFERENCE:
            return Lane(lane.scheduler, min(MAX_STEPS, lane.steps * self.reference.steps), lane.settings)
        return replace(self.reference, settings=lane.settings) if self.reference else lane

    def lane_requests(self) -> list[GenerationRequest]:
        """One GenerationRequest per lane, then one per reference lane (see reference_lanes)."""
        from diffusers_tui.engine.axes import with_lane_settings
        from diffusers_tui.engine.sampling import registry as schedulers

        requests = []
        for lane in self.lanes:
            steps = lane.steps
            order = 1 if schedulers.is_model_default(lane.scheduler) else schedulers.resolve_any(lane.scheduler)[0].order
            if self.equal_calls and order == 2:
                # Heun-like solvers make 2N-1 calls for N steps: N' = ceil(N/2) stays within N.
                steps = max(1, math.ceil(steps / 2))
            requests.append(with_lane_settings(replace(self.base, scheduler=lane.scheduler, schedule="Automatic",
                                                   steps=steps), lane.settings))
        for lane in self.reference_lanes():
            requests.append(with_lane_settings(replace(self.base, scheduler=lane.scheduler, schedule="Automatic",
                                                   steps=lane.steps), lane.settings))
        return requests



def parse_lanes(schedulers_text: str, steps_text: str) -> tuple[Lane, ...]:
    """ "Euler,DPM++ 2M Karras" x "10,20" -> every scheduler at every step count."""
    steps = parse_step_list(steps_text)
    return tuple(Lane(name, count) for name in parse_scheduler_list(schedulers_text) for count in steps)


def parse_scheduler_list(text: str) -> list[str]:
    """ "Euler, DPM++ 2M Karras" -> ["Euler", "DPM++ 2M Karras"]; the names are checked by the request."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise RequestError("compare", "give schedulers separated by commas, e.g. \"Euler,DPM++ 2M Karras,UniPC\"")
    return names


def parse_step_list(text: str) -> list[int]:
    """ "10,20,30" -> [10, 20, 30], with a message naming the field when it is not that."""
    counts = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not _ascii_digits(part) or not 1 <= int(part) <= MAX_STEPS:
            raise RequestError("compare_steps", f"{shown(part, 40)!r} is not a step count from 1 to {MAX_STEPS} "
                                                f"(give one or more, like 10,20,30)")
        counts.append(int(part))
    if not counts:
        raise RequestError("compare_steps", "give one or more step counts, like 20 or 10,20,30")
    return list(dict.fromkeys(counts))


def _ascii_digits(text: str) -> bool:
    # str.isdigit() is true of "²" and "٣", which int() refuses or reads as another number.
    return text.isascii() and text.isdigit()


#: A reference that is each lane's own sampler at more steps: Lane(OWN_REFERENCE, 4) for "4x".
OWN_REFERENCE = "own"


def parse_reference(text: str | None) -> Lane | None:
    """ "DPM++ 2M:100" -> Lane("DPM++ 2M", 100); "4x" -> each lane's own run at 4x its steps; None stays None."""
    if not text:
        return None
    multiple = text.strip().lower().removesuffix("x").removesuffix("×").strip()
    if text.strip().lower().endswith(("x", "×")) and _ascii_digits(multiple):
        if not 2 <= int(multiple) <= 64:
            raise RequestError("reference", f"{shown(text, 20)!r}: a lane's own run at 2x to 64x its steps")
        return Lane(OWN_REFERENCE, int(multiple))
    name, _, steps = text.rpartition(":")
    if not name or not _ascii_digits(steps.strip()):
        raise RequestError("reference", f"{shown(text, 80)!r} is not SCHEDULER:STEPS, e.g. \"DPM++ 2M:100\"")
    return Lane(name.strip(), int(steps))


@dataclass(frozen=True)
class LaneResult:
    """One lane's run: its result, its previews (for scrubbing) and its distance."""

    lane: Lane
    result: GenerationResult
    frames: tuple[StepSnapshot, ...] = ()
    #: See DISTANCE_NAME; None without a reference or when the lane was cancelled.
    distance: float | None = None
    #: Against its reference (engine.study_metrics): rmse, ssim, and latent_l2 where both were recorded.
    metrics: dict | None = None
    #: (fraction of model calls spent, distance of that call's x0 estimate to the reference's final latent).
    trajectory: tuple = ()
    #: The σ schedule the lane's sampler stepped through, first to last (filled in by the engine).
    sigmas: tuple = ()


@dataclass(frozen=True)
class ComparisonResult:
    """Every lane's result, the reference's, and how the comparison ran."""

    request: ComparisonRequest
    lanes: tuple[LaneResult, ...]
    #: The reference runs, one per distinct set of the lanes' other fields (ComparisonRequest.reference_lanes).
    references: tuple[LaneResult, ...]
    #: True when rounds were batched into one UNet call; False when lanes ran one by one.
    batched: bool
    elapsed_s: float
    cancelled: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reference(self) -> LaneResult | None:
        """The first reference run (the only one unless a study's axes change the prompt, seed or guidance)."""
        return self.references[0] if self.references else None

    def reference_for(self, lane: Lane) -> LaneResult | None:
        """The reference run `lane` is measured against (see ComparisonRequest.reference_key)."""
        key = self.request.reference_key(lane)
        return next((reference for reference in self.references if reference.lane == key), None)

    def table(self) -> list[dict[str, Any]]:
        """One row per lane: what the table, the CSV and the JSON show (a column for each study axis)."""
        rows = []
        axes = [axis for axis in self.request.axes if axis is not None]
        for lane_result in self.lanes:
            result = lane_result.result
            row = {"scheduler": lane_result.lane.scheduler, "steps": result.request.steps}
            for axis in axes:
                if axis.kind not in ("sampler", "steps") and lane_result.lane.at:
                    row[axis.title] = axis.label(_axis_value(axis, lane_result.lane, self.request.axes))
            if self.request.seeds > 1:
                row["seed"] = result.request.seed
            rows.append({
                **row,
                "model_calls": result.model_calls,
                "seconds": round(result.elapsed_s, 3),
                "rmse_to_reference": None if lane_result.distance is None else round(lane_result.distance, 2),
                "latent_l2_to_reference": _metric(lane_result, "latent_l2", 3),
                "ssim_to_reference": _metric(lane_result, "ssim", 4),
                "cancelled": result.cancelled,
            })
        return rows


    def summary(self) -> list[dict[str, Any]]:
        """One row per study cell (a lane's place on x, y, z): each figure's mean and spread over its seeds.

        The spread is the sample standard deviation (n - 1); with one seed it is 0. Cancelled lanes and
        lanes without a distance are left out of the distance's figures, and `seeds` counts what was used.
        """
        rows = []
        table = {id(lane): row for lane, row in zip(self.lanes, self.table())}
        for cell, members in self._cells().items():
            first = members[0]
            row = {key: value for key, value in table[id(first)].items()
                   if key not in ("seed", "model_calls", "seconds", "rmse_to_reference", "latent_l2_to_reference",
                                  "ssim_to_reference", "cancelled", "file")}
            distances = [lane.distance for lane in members if lane.distance is not None and not lane.result.cancelled]
            seconds = [lane.result.elapsed_s for lane in members]
            similarity = [lane.metrics["ssim"] for lane in members if lane.metrics and not lane.result.cancelled]
            row.update(seeds=len(distances), model_calls=first.result.model_calls,
                       seconds_mean=round(mean(seconds), 3),
                       rmse_mean=None if not distances else round(mean(distances), 2),
                       rmse_spread=None if not distances else round(sample_spread(distances), 2),
                       ssim_mean=None if not similarity else round(mean(similarity), 4),
                       ssim_spread=None if not similarity else round(sample_spread(similarity), 4))
            rows.append(row)
        return rows

    def ranking(self) -> list[dict[str, Any]]:
        """The study's cells, best first by mean distance to their references, and where the seeds disagree.

        For each cell: its mean distance, how many seeds ranked it first, and for the cell ranked next
        below it, on how many seeds that one was in fact closer (0: every seed agrees on the order).
        """
        cells = {cell: members for cell, members in self._cells().items()
                 if all(lane.distance is not None for lane in members)}
        if not cells:
            return []
        by_seed: dict[int, dict[tuple, float]] = {}
        for cell, members in cells.items():
            for lane in members:
                by_seed.setdefault(_seed_place(lane.lane), {})[cell] = lane.distance
        order = sorted(cells, key=lambda cell: mean([lane.distance for lane in cells[cell]]))
        firsts = {cell: 0 for cell in cells}
        for distances in by_seed.values():
            firsts[min(distances, key=distances.get)] += 1
        ranking = []
        for place, cell in enumerate(order):
            below = order[place + 1] if place + 1 < len(order) else None
            flips = None if below is None else sum(
                1 for distances in by_seed.values() if below in distances and cell in distances
                and distances[below] < distances[cell])
            ranking.append({"place": place + 1, "lane": self._cell_label(cells[cell][0]),
                            "rmse_mean": round(mean([lane.distance for lane in cells[cell]]), 2),
                            "first_on_seeds": firsts[cell], "seeds": len(cells[cell]),
                            "next_closer_on_seeds": flips})
        return ranking

    def _cells(self) -> dict[tuple, list[LaneResult]]:
        cells: dict[tuple, list[LaneResult]] = {}
        for lane in self.lanes:
            cells.setdefault((lane.lane.at or (0, 0, 0))[:3], []).append(lane)
        return cells

    def _cell_label(self, lane: LaneResult) -> str:
        settings = tuple((name, value) for name, value in lane.lane.settings
                         if not (name == "seed" and self.request.seeds > 1))
        return " · ".join([lane.lane.scheduler, f"{lane.lane.steps} steps", *settings_labels(self.request, settings)])


def _metric(lane: LaneResult, name: str, digits: int) -> float | None:
    value = (lane.metrics or {}).get(name)
    return None if value is None else round(value, digits)


def _seed_place(lane: Lane) -> int:
    """Which of the --seeds a lane runs on (0 without them)."""
    return lane.at[3] if len(lane.at) > 3 else 0


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def sample_spread(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(sum((value - centre) ** 2 for value in values) / (len(values) - 1))


def _axis_value(axis, lane: Lane, axes: tuple):
    """The value of `axis` at `lane` (from the lane's place on the axes)."""
    position = next(i for i, placed in enumerate(axes) if placed is axis)
    return axis.values[lane.at[position]]


def settings_labels(request: ComparisonRequest, settings: tuple) -> list[str]:
    """A lane's other fields, short: ["guidance 7", "seed 3", "green"] (a prompt by the word its axis put in)."""
    from diffusers_tui.engine.axes import replaced_prompt

    labels = []
    for name, value in settings:
        if name == "prompt":
            axis = next((axis for axis in request.axes if axis is not None and axis.kind == "prompt"), None)
            word = next((word for word in (axis.values if axis else ())
                         if replaced_prompt(request.base.prompt, axis, word) == value), None)
            labels.append(shown(word, 30) if word is not None else setting_label(name, value))
        else:
            labels.append(setting_label(name, value))
    return labels


def image_distance(image, reference) -> float:
    """RMS difference of two RGB images in 0-255 units (the reference is resized if needed)."""
    import numpy as np

    if reference.size != image.size:
        reference = reference.resize(image.size)
    a = np.asarray(image.convert("RGB"), dtype=np.float64)
    b = np.asarray(reference.convert("RGB"), dtype=np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)))

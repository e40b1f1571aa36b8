"""Scheduler comparisons: what to race (lanes), what came back, and the results table.

No torch here: the app builds and checks a comparison before the heavy libraries load.
Every lane shares the base request's prompt, seed and size, so every lane starts from the
same noise; only the scheduler and the step count differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.request import MAX_STEPS, GenerationRequest, GenerationResult, StepSnapshot
from diffusers_tui.engine.text import shown

MAX_LANES = 32
#: The distance in the table: root mean square difference of the final RGB images
#: against the reference image, in 0-255 pixel units (0 = identical).
DISTANCE_NAME = "RMSE to reference (0-255)"


@dataclass(frozen=True)
class Lane:
    """One run of a comparison: a registry scheduler at a step count."""

    scheduler: str
    steps: int

    @property
    def label(self) -> str:
        return f"{self.scheduler} · {self.steps}"


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

    def __post_init__(self) -> None:
        from diffusers_tui.engine.sampling import registry as schedulers

        if not self.lanes:
            raise RequestError("compare", "mark at least one scheduler to compare")
        if len(self.lanes) > MAX_LANES:
            raise RequestError("compare", f"{len(self.lanes)} runs is more than {MAX_LANES}; mark fewer")
        # Each lane names its sampler and schedule type in one label: "DPM++ 2M Karras"; a bare
        # sampler name runs on the base request's schedule type.
        object.__setattr__(self, "lanes", tuple(self._labelled(lane) for lane in self.lanes))
        if self.reference is not None:
            object.__setattr__(self, "reference", self._labelled(self.reference))
        for lane in (*self.lanes, *([self.reference] if self.reference else [])):
            if isinstance(lane.steps, bool) or not isinstance(lane.steps, int) or not 1 <= lane.steps <= MAX_STEPS:
                raise RequestError("compare_steps", f"{lane.steps!r} steps is outside 1 to {MAX_STEPS}")
        if len(set(self.lanes)) != len(self.lanes):
            raise RequestError("compare", "the same scheduler and step count is marked twice")
        if self.equal_calls:  # halving can make two marked lanes one: 3 and 4 steps of Heun both run 2
            ran: dict[tuple[str, int], int] = {}
            for lane, request in zip(self.lanes, self.lane_requests()):
                key = (lane.scheduler, request.steps)
                if key in ran:
                    raise RequestError("compare", f"with equal model calls, {lane.scheduler} at {ran[key]} and "
                                                  f"{lane.steps} steps both run {request.steps} steps; mark step "
                                                  "counts that stay apart when halved, or turn equal calls off")
                ran[key] = lane.steps

    def _labelled(self, lane: Lane) -> Lane:
        from diffusers_tui.engine.sampling import registry as schedulers

        if schedulers.is_model_default(lane.scheduler):
            return Lane(schedulers.MODEL_DEFAULT, lane.steps)
        entry, schedule = schedulers.lane_choice(lane.scheduler, self.base.schedule)  # a bad name says why
        return Lane(schedulers.label(entry, schedule), lane.steps)

    def lane_requests(self) -> list[GenerationRequest]:
        """One GenerationRequest per lane (then the reference, when there is one)."""
        from diffusers_tui.engine.sampling import registry as schedulers

        requests = []
        for lane in self.lanes:
            steps = lane.steps
            order = 1 if schedulers.is_model_default(lane.scheduler) else schedulers.resolve_any(lane.scheduler)[0].order
            if self.equal_calls and order == 2:
                # Heun-like solvers make 2N-1 calls for N steps: N' = ceil(N/2) stays within N.
                steps = max(1, math.ceil(steps / 2))
            requests.append(replace(self.base, scheduler=lane.scheduler, schedule="Automatic", steps=steps))
        if self.reference is not None:
            requests.append(replace(self.base, scheduler=self.reference.scheduler, schedule="Automatic",
                                    steps=self.reference.steps))
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


def parse_reference(text: str | None) -> Lane | None:
    """ "DPM++ 2M:100" -> Lane("DPM++ 2M", 100); None stays None."""
    if not text:
        return None
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


@dataclass(frozen=True)
class ComparisonResult:
    """Every lane's result, the reference's, and how the comparison ran."""

    request: ComparisonRequest
    lanes: tuple[LaneResult, ...]
    reference: LaneResult | None
    #: True when rounds were batched into one UNet call; False when lanes ran one by one.
    batched: bool
    elapsed_s: float
    cancelled: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def table(self) -> list[dict[str, Any]]:
        """One row per lane: what the table, the CSV and the JSON show."""
        rows = []
        for lane_result in self.lanes:
            result = lane_result.result
            rows.append({
                "scheduler": lane_result.lane.scheduler,
                "steps": result.request.steps,
                "model_calls": result.model_calls,
                "seconds": round(result.elapsed_s, 3),
                "rmse_to_reference": None if lane_result.distance is None else round(lane_result.distance, 2),
                "cancelled": result.cancelled,
            })
        return rows


def image_distance(image, reference) -> float:
    """RMS difference of two RGB images in 0-255 units (the reference is resized if needed)."""
    import numpy as np

    if reference.size != image.size:
        reference = reference.resize(image.size)
    a = np.asarray(image.convert("RGB"), dtype=np.float64)
    b = np.asarray(reference.convert("RGB"), dtype=np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def with_distances(lanes: list[LaneResult], reference: LaneResult | None) -> list[LaneResult]:
    """The lanes with their distance to the reference's final image filled in."""
    if reference is None or reference.result.image is None:
        return lanes
    return [
        replace(lane, distance=image_distance(lane.result.image, reference.result.image))
        if lane.result.image is not None else lane
        for lane in lanes
    ]

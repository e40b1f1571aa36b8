"""A comparison split across processes (one per GPU) under `accelerate launch`, gathered on the main one.

Each process runs its share of the lanes, split with Accelerate's `PartialState`; the
last process (which gets the fewest lanes) also runs the reference; the main process
gathers every lane and measures them against the reference.
"""

from __future__ import annotations

import os
import time

from diffusers_tui.engine import study_metrics
from diffusers_tui.engine.comparison import ComparisonRequest, ComparisonResult, LaneResult


def launched_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def compare_across_processes(engine, request: ComparisonRequest, pick_device: bool) -> ComparisonResult | None:
    """This process's share of `request`; the whole result on the main process, None elsewhere."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    started = time.perf_counter()
    state = PartialState(cpu=not torch.cuda.is_available() or engine.options.device == "cpu")
    if pick_device and state.device.type != "cpu":
        engine = engine.with_device(str(state.device))  # one GPU per process
    indexed = list(enumerate(request.lanes))
    with state.split_between_processes(indexed) as mine:
        mine = list(mine)
    mine_results: list[tuple[int, LaneResult]] = []
    batched = False
    if mine:
        share = ComparisonRequest(request.base, tuple(lane for _, lane in mine), request.equal_calls,
                                  None, request.batch)
        share_result = engine.compare(share)
        batched = share_result.batched
        mine_results = [(index, lane) for (index, _), lane in zip(mine, share_result.lanes)]
    references = request.reference_lanes()
    if references and state.is_last_process:
        reference = engine.compare(ComparisonRequest(request.base, tuple(references), batch=request.batch))
        mine_results.extend((-1 - number, lane) for number, lane in enumerate(reference.lanes))
    gathered = gather_object([(index, _portable(lane), batched) for index, lane in mine_results])
    # Every rank leaves the process group before it exits: a rank that exited with gloo's threads
    # still running aborted ("terminate called without an active exception"), about one run in five.
    state.wait_for_everyone()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    if not state.is_main_process:
        return None
    references = [lane for _, lane, _ in sorted((g for g in gathered if g[0] < 0), key=lambda g: -g[0])]
    lanes = [lane for _, lane, _ in sorted((g for g in gathered if g[0] >= 0), key=lambda g: g[0])]
    return ComparisonResult(
        request=request, lanes=tuple(study_metrics.measure(request, lanes, references)), references=tuple(references),
        batched=all(b for _, _, b in gathered), elapsed_s=time.perf_counter() - started,
        notes=(f"{state.num_processes} processes shared the {len(request.lanes)} runs",),
    )


def _portable(lane: LaneResult) -> LaneResult:
    """`lane` as it can be pickled to the main process: each recorded step keeps its latents (the main process
    measures latent distances and trajectories from them) without the decoders or the copy's device event."""
    from dataclasses import replace

    frames = tuple(replace(frame, preview=None,
                           latents=None if frame.latents is None else replace(
                               frame.latents, x0=_landed(frame.latents, "x0"), noisy=frame.latents.of("noisy"),
                               decoders=None, copied=None))
                   for frame in lane.frames)
    return replace(lane, frames=frames)


def _landed(latents, kind: str):
    """The step's `kind` latent once its copy has landed; None where the step has no x0 estimate."""
    return None if kind == "x0" and latents.x0 is None else latents.of(kind)

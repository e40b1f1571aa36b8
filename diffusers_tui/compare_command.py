"""`diffusers-tui compare`: race schedulers headless, on one process or split across several.

Under `accelerate launch --num_processes N` each process (one per GPU) runs its share of
the lanes, split with Accelerate's `PartialState`; the main process gathers every
result, measures them against the reference, prints one table and saves one grid.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from diffusers_tui import cli
from diffusers_tui.engine.comparison import (DISTANCE_NAME, ComparisonRequest, ComparisonResult, LaneResult,
                                             parse_lanes, parse_reference, with_distances)


def build_request(args, base) -> ComparisonRequest:
    return ComparisonRequest(base=base, lanes=parse_lanes(args.schedulers, args.steps),
                             equal_calls=args.equal_calls, reference=parse_reference(args.reference),
                             batch=not args.no_batch)


def _launched_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def run(args, engine, base) -> int:
    from diffusers_tui.engine import compare_outputs

    request = build_request(args, base)  # validate before loading anything
    started = time.perf_counter()
    if _launched_distributed():
        result, is_main = _run_distributed(args, engine, request, started)
    else:
        print(f"loading {base.model} ...", file=sys.stderr)
        result, is_main = engine.compare(request), True
    if not is_main:
        return 0
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for lane in result.lanes:
        if lane.result.stopped:
            print(f"warning: {lane.lane.label}: {lane.result.stopped}", file=sys.stderr)
    print_results(result)
    folder = cli.save_or_rescue(lambda outputs_dir: compare_outputs.save_comparison(result, outputs_dir), args.outputs)
    print(f"saved {folder / 'grid.png'} (and every image, table.csv, table.json) "
          f"in {result.elapsed_s:.1f} s{', batched' if result.batched else ''}")
    return 0


def _run_distributed(args, engine, request: ComparisonRequest, started: float) -> tuple[ComparisonResult, bool]:
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    state = PartialState(cpu=not torch.cuda.is_available() or args.device == "cpu")
    if args.device == "auto" and state.device.type != "cpu":
        engine.options = replace(engine.options, device=str(state.device))  # one GPU per process
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
    if request.reference is not None and state.is_last_process:  # the last process gets the fewest lanes
        reference = engine.compare(ComparisonRequest(request.base, (request.reference,), batch=request.batch))
        mine_results.append((-1, reference.lanes[0]))
    gathered = gather_object([(index, lane, batched) for index, lane in mine_results])
    if not state.is_main_process:
        return None, False
    reference = next((lane for index, lane, _ in gathered if index == -1), None)
    lanes = [lane for _, lane, _ in sorted((g for g in gathered if g[0] >= 0), key=lambda g: g[0])]
    result = ComparisonResult(
        request=request, lanes=tuple(with_distances(lanes, reference)), reference=reference,
        batched=all(b for _, _, b in gathered), elapsed_s=time.perf_counter() - started,
        notes=(f"{state.num_processes} processes shared the {len(request.lanes)} runs",),
    )
    return result, True


def print_results(result: ComparisonResult) -> None:
    rows = result.table()
    header = ("scheduler", "steps", "model calls", "seconds", "rmse")
    cells = [(row["scheduler"], str(row["steps"]), str(row["model_calls"]), f"{row['seconds']:.2f}",
              "-" if row["rmse_to_reference"] is None else f"{row['rmse_to_reference']:.2f}") for row in rows]
    cli.print_table(header, cells)
    if result.reference is not None:
        print(f"rmse: {DISTANCE_NAME}; reference {result.reference.lane.scheduler}, "
              f"{result.reference.lane.steps} steps")

"""`diffusers-tui compare`: race schedulers headless, on one process or split across several.

Under `accelerate launch --num_processes N` each process (one per GPU) runs its share of
the lanes (see engine.sampling.distributed); the main process prints one table and saves
one grid.
"""

from __future__ import annotations

import sys

from diffusers_tui.commands.common import engine_for, print_table, save_or_rescue, say, warn
from diffusers_tui.commands.generate import loras_of, sampler_options_of, seed_resize_of
from diffusers_tui.engine import (DISTANCE_NAME, OWN_REFERENCE, ComparisonRequest, ComparisonResult, build_comparison, build_request,
                                  parse_scheduler_list, quiet)


def request_of(args, settings) -> ComparisonRequest:
    """Every combination of the study's axes (--x/--y/--z, --schedulers, --steps), on one base request built
    like any other."""
    # With a reference, every step's latents are kept (a linear map, decoded only if looked at): the latent
    # distance and the trajectories are measured from them. Without one nothing is recorded.
    base = build_request(settings.values, pinned=settings.pinned,
                         given={"prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed,
                                **{name: getattr(args, name) for name in ("eta", "s_noise", "shift", "s_churn",
                                                                           "s_tmin", "s_tmax", "guidance_rescale",
                                                                           "variation_seed", "variation_strength", "pag_scale")},
                                "seed_resize_from": seed_resize_of(args),
                                "loras": loras_of(args), "sampler_options": sampler_options_of(args),
                                "preview_method": "latent" if args.reference else "none"})
    schedulers = parse_scheduler_list(args.schedulers) if args.schedulers.strip() else []
    return build_comparison(base, schedulers, args.step_list or str(settings["steps"]),
                            reference=args.reference, equal_calls=args.equal_calls, batch=not args.no_batch,
                            axes={"x": args.x, "y": args.y, "z": args.z}, seeds=args.seeds)


def run(args, settings) -> int:
    quiet()
    request = request_of(args, settings)  # validate before loading anything
    engine = engine_for(args)
    if engine.launched_distributed():
        result = engine.compare_across_processes(request, pick_device=args.device == "auto")
        if result is None:
            return 0  # not the main process: it printed nothing and saves nothing
    else:
        for found in engine.tidy_outputs(args.outputs):  # saves a killed run left unfinished
            warn(found)
        say(f"loading {request.base.model} ...", file=sys.stderr)
        result = engine.compare(request)
    for note in result.notes:
        say(f"note: {note}", file=sys.stderr)
    for lane in result.lanes:
        if lane.result.stopped:
            say(f"warning: {lane.lane.label}: {lane.result.stopped}", file=sys.stderr)
    print_results(result)
    folder = save_or_rescue(lambda outputs_dir: engine.save_comparison(result, outputs_dir), args.outputs)
    say(f"saved {folder / 'grid.png'} (and every image, table.csv, table.json) "
          f"in {result.elapsed_s:.1f} s{', batched' if result.batched else ''}")
    return 0


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_results(result: ComparisonResult) -> None:
    rows = result.table()
    extra = result.request.axis_columns()  # the study's other axes
    header = ("scheduler", "steps", *extra, "model calls", "seconds", "rmse", "ssim", "latent L2")
    cells = [(row["scheduler"], str(row["steps"]), *(str(row[name]) for name in extra), str(row["model_calls"]),
              f"{row['seconds']:.2f}", _figure(row["rmse_to_reference"], 2), _figure(row["ssim_to_reference"], 3),
              _figure(row["latent_l2_to_reference"], 2))
             for row in rows]
    print_table(header, cells)
    if result.request.seeds > 1:
        print_summary(result)
    if result.reference is not None:
        reference = result.request.reference
        against = (f"each run's own sampler at {reference.steps}x its steps" if reference.scheduler == OWN_REFERENCE
                   else f"reference {reference.scheduler}, {reference.steps} steps")
        say(f"rmse: {DISTANCE_NAME}; {against}")


def print_summary(result: ComparisonResult) -> None:
    """Under --seeds: each cell's mean and spread over its seeds, then the ranking and where seeds disagree."""
    rows = result.summary()
    extra = [name for name in (rows[0] if rows else {}) if name not in SUMMARY_COLUMNS]
    say(f"\nover {result.request.seeds} seeds (mean ± sample standard deviation):")
    print_table(("scheduler", "steps", *extra, "seeds", "model calls", "seconds", "rmse"),
                [(row["scheduler"], str(row["steps"]), *(str(row[name]) for name in extra), str(row["seeds"]),
                  str(row["model_calls"]), f"{row['seconds_mean']:.2f}",
                  "-" if row["rmse_mean"] is None else f"{row['rmse_mean']:.2f} ± {row['rmse_spread']:.2f}")
                 for row in rows])
    ranking = result.ranking()
    if ranking:
        say("\nranking by mean rmse (first: on how many seeds it was closest; next closer: on how many seeds "
            "the one ranked below it was closer):")
        print_table(("place", "run", "rmse", "first", "next closer"),
                    [(str(row["place"]), row["lane"], f"{row['rmse_mean']:.2f}",
                      f"{row['first_on_seeds']}/{row['seeds']}",
                      "-" if row["next_closer_on_seeds"] is None else f"{row['next_closer_on_seeds']}/{row['seeds']}")
                     for row in ranking])


#: The summary's columns that every study has; one more per axis beyond sampler and steps.
SUMMARY_COLUMNS = ("scheduler", "steps", "seeds", "model_calls", "seconds_mean", "rmse_mean", "rmse_spread",
                   "ssim_mean", "ssim_spread")

"""``run``: plan, validate, submit, wait; print where the results are."""

from __future__ import annotations

import argparse

from harness.commands._common import add_plan_args, add_submit_args, parse_seeds, summarize


def _run(args: argparse.Namespace) -> int:
    from harness.launch import submit
    from harness.plan import plan_runs

    runs = plan_runs(args.host, args.task, args.mode, seeds=parse_seeds(args.seeds), overrides=args.overrides,
                     experiment=args.config, preset=args.preset, store_root=args.store)
    print(f"planned {len(runs)} run(s) under {runs[0].store_root}")
    results = submit(runs, args.executor, force=args.force, wait=False if args.no_wait else None)
    return summarize(results)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="plan, validate and run (host x task x seeds)",
                       description="Plan runs of hosts x tasks x seeds, validate them (names, capabilities, data "
                                   "files, checkpoints, overrides) before anything is submitted, run them and print "
                                   "where the results are. --mode posttrain evaluates like finetune afterwards "
                                   "(posttrain.then) so one command gives a 'Finsta-<host>' table row.")
    add_plan_args(p)
    add_submit_args(p)
    p.set_defaults(func=_run)

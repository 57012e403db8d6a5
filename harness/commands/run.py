"""``run``: plan (and print the plan), validate, submit, wait; print the scores and where the results are."""

from __future__ import annotations

import argparse

from harness.commands._common import add_plan_args, add_submit_args, plan_from_args, print_scores, summarize


def _run(args: argparse.Namespace) -> int:
    from harness.launch import submit

    runs = plan_from_args(args)
    results = submit(runs, args.executor, force=args.force, wait=False if args.no_wait else None)
    status = summarize(results)
    print_scores(runs)
    return status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="plan, validate and run (host x task x seeds)",
                       description="Plan runs of hosts x tasks x seeds, print the plan, validate them (names, "
                                   "capabilities, data files, checkpoints, scene graphs, overrides, value ranges) "
                                   "before anything is submitted, run them and print their scores and where the "
                                   "results are. --mode posttrain evaluates like finetune afterwards "
                                   "(posttrain.then) so one command gives a 'Finsta-<host>' table row.")
    add_plan_args(p)
    add_submit_args(p)
    p.set_defaults(func=_run)

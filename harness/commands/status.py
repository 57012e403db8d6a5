"""``status``: what is pending, running, finished, failed (or dead, incomplete, corrupt) in the results store.

Reads ``status.json`` files only (plus a liveness check of running runs); imports neither torch nor pandas.
"""

from __future__ import annotations

import argparse
import json
import time

from harness.errors import StoreError
from harness.store import RunStore


def _status(args: argparse.Namespace) -> int:
    store = RunStore(args.store)
    if store.root.exists() and not store.root.is_dir():
        raise StoreError(f"results store {store.root} is a file, not a folder: pass --store DIR")
    rows = []
    for run_id, spec, st in store.iter_runs():
        try:
            job = (store.read_json(run_id, "job.json") or {}).get("job_id")
        except StoreError:
            job = None
        rows.append({"run_id": run_id, "state": st.get("state", "unknown"), "host": spec.get("host"),
                     "task": spec.get("task"), "mode": spec.get("mode"), "seed": spec.get("seed"),
                     "attempts": st.get("attempts", 0), "error": st.get("problem") or st.get("error", ""),
                     "summary": st.get("summary", ""), "updated": st.get("updated"), "job": job})
    if args.state:
        rows = [r for r in rows if r["state"] == args.state]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    print(f"{store.root}: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no runs"))
    for r in sorted(rows, key=lambda r: (r["state"] == "finished", r["run_id"])):
        if r["state"] == "finished" and not args.all:
            continue
        age = f"{(time.time() - r['updated']) / 60:.0f} min ago" if r["updated"] else ""
        err = f"  {r['error']}" if r["error"] else (f"  {r['summary']}" if r["summary"] else "")
        print(f"{r['state']:10s} {r['run_id']}  attempts={r['attempts']} job={r['job'] or '-'} {age}{err}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="what is running, finished, failed",
                       description="Summarise the runs of the results store by state; lists unfinished runs "
                                   "(with their errors), --all lists finished ones too. A run whose status says "
                                   "running but whose process is gone is shown as dead; a finished run without "
                                   "readable metrics as incomplete; a corrupt status file as corrupt.")
    p.add_argument("--store", default="results/runs", help="results root (default results/runs)")
    p.add_argument("--state", default=None, help="only runs in this state")
    p.add_argument("--all", action="store_true", help="also list finished runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)

"""``list hosts|tasks|sweeps [--json]``: what is registered."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _rows(what: str) -> list[dict[str, Any]]:
    if what == "hosts":
        from hosts.registry import HOSTS, discover

        discover()
        return sorted(HOSTS.list(), key=lambda r: (r.get("order", 10**6), r["name"]))  # registration metadata
    if what == "tasks":
        from tasks.registry import TASKS, task_names

        rows = []
        for name in task_names():
            meta = TASKS.meta(name)
            if "type" in meta:  # the catalogue registers its metadata: nothing is built
                rows.append({"name": name, **meta})
                continue
            try:
                rows.append(TASKS.get(name)().describe())
            except Exception as err:  # noqa: BLE001 - list what loads, flag what does not
                rows.append({"name": name, "error": str(err)})
        return rows
    from harness.sweeps import list_sweeps, load_sweep

    return [{"name": n, "description": " ".join(str(load_sweep(n).get("description", "")).split())}
            for n in list_sweeps()]


def _list(args: argparse.Namespace) -> int:
    rows = _rows(args.what)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    cols = {"hosts": ["name", "arch", "capabilities", "params", "status"],
            "tasks": ["name", "type", "dataset", "metrics", "protocol"],
            "sweeps": ["name", "description"]}[args.what]
    table = [[", ".join(map(str, r.get(c, ""))) if isinstance(r.get(c), list) else str(r.get(c, r.get("error", "")))
              for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in table]) for i, c in enumerate(cols)]
    widths[-1] = min(widths[-1], 100)
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in table:
        print("  ".join(v[:100].ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered hosts, tasks or sweeps",
                       description="List registered hosts (architecture T/V/C, capabilities), tasks (type, "
                                   "dataset, metrics, video protocol) or named sweeps.")
    p.add_argument("what", choices=["hosts", "tasks", "sweeps"])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_list)

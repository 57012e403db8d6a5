"""``python -m harness data check``: validate a task's annotation files (and videos when present).

    python -m harness data check --task msrvtt_qa --root /data/msrvtt [--split val] [--json] [--lenient]

For every split (or ``--split``): the files it needs, then the number of samples, videos, texts, classes or
answers, records skipped, answers outside the vocabulary and problems found. A split whose file holds no record
(empty or header only) is reported ``[empty]``, never ``[ok]``. Videos are checked only when some of them exist
under the root: missing ones are listed, and at most ``--max-videos`` are opened and their last seconds decoded
(``tasks.video.check_video``), so unreadable and truncated files (frames stop before the container's duration)
are listed too. Exit status: 0 all good, 1 problems found (bad records skipped in ``--lenient`` mode, an empty
split, missing, unreadable or truncated videos), 2 a user error (unknown task, bad ``--option``, no split has its
files, malformed file in strict mode), printed as one ``error:`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

# tasks.* import torch: they are imported inside the functions so that building the CLI parser (which imports
# every command module) stays light. These are lazy imports, not cycle breakers: nothing in tasks imports harness.


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="dataset utilities (annotation checks)")
    sub = data.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser("check", help="validate a task's annotation files and report per-split counts")
    p.add_argument("--task", required=True, help="registered task name (python -m harness list tasks)")
    p.add_argument("--root", default=None, help="dataset root (default: FINSTA_DATA_<DATASET> / FINSTA_DATA_ROOT)")
    p.add_argument("--split", action="append", default=None, help="split(s) to check (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--lenient", action="store_true", help="skip and count malformed records instead of stopping")
    p.add_argument("--no-videos", action="store_true", help="do not look at video files")
    p.add_argument("--max-videos", type=int, default=1000, help="check at most this many videos per split")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="task option (e.g. qa_format=original); VALUE parsed as YAML")
    p.set_defaults(func=check_command)


def _options(items: list[str]) -> dict[str, Any]:
    out = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--option must look like KEY=VALUE, got {it!r}")
        try:
            out[key.strip()] = yaml.safe_load(val)
        except yaml.YAMLError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise HarnessError(f"--option {it!r}: VALUE is not valid YAML ({first})") from None
    return out


def check_videos(samples: list, max_videos: int) -> dict[str, Any]:
    """Missing, unreadable and truncated videos of ``samples`` (skipped entirely when none of them exists)."""
    from tasks.video import VideoDecodeError, check_video

    paths = list(dict.fromkeys(s.video for s in samples if s.video))
    present = [p for p in paths if Path(p).is_file()]
    if not present:
        return {"checked": False, "reason": "no video file present", "total": len(paths)}
    missing = [p for p in paths if not Path(p).is_file()]
    unreadable = []
    for p in present[:max_videos]:
        try:
            check_video(p)
        except VideoDecodeError as err:
            unreadable.append(f"{p}: {err}")
    return {"checked": True, "total": len(paths), "present": len(present), "probed": min(len(present), max_videos),
            "missing": missing, "unreadable": unreadable}


def run_check(task_name: str, root: str | None, splits: list[str] | None = None, lenient: bool = False,
              videos: bool = True, max_videos: int = 1000, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report as a dict: ``{"task", "root", "splits": {split: {...}}, "ok", "status"}``."""
    if max_videos < 0:
        raise HarnessError(f"--max-videos must be >= 0, got {max_videos}")
    from finsta_core.registry import RegistryError, UnknownNameError
    from tasks.registry import create_task

    try:
        task = create_task(task_name, root=root, strict=not lenient, **(options or {}))
    except UnknownNameError as err:
        raise HarnessError(str(err)) from None
    except (RegistryError, TypeError, ValueError) as err:
        msg = str(err)
        raise HarnessError(msg if msg.startswith(f"task {task_name!r}") else f"task {task_name!r}: {msg}") from None
    wanted = splits or list(task.splits)
    for s in wanted:
        if s not in task.splits:
            raise HarnessError(f"task {task_name!r} has no split {s!r} (splits: {', '.join(task.splits)})")
    report: dict[str, Any] = {"task": task.name, "type": task.task_type.value, "dataset": task.dataset,
                              "root": str(task.data_root if task.data_root is not None else root), "splits": {}}
    status = 0
    for s in wanted:
        try:
            missing = task.missing_files(s)
            if missing:
                report["splits"][s] = {"status": "absent", "missing": [m.message() for m in missing]}
                continue
            samples = task.samples(s)
        except (ValueError, OSError) as err:  # AnnotationError is a ValueError
            raise HarnessError(f"task {task_name!r} split {s!r}: {err}") from None
        split_report = task.report(s)
        rep = split_report.as_dict() if split_report is not None else {
            "split": s, "samples": len(samples), "videos": len({x.video for x in samples if x.video}),
            "texts": sum(len(x.texts) for x in samples), "skipped": 0}
        rep["status"] = "ok"
        if rep.get("skipped"):
            rep["status"], status = "problems", 1
        if not samples:
            rep["status"], status = "empty", 1
            rep.setdefault("problems", []).insert(0, "no sample: the split's file is empty or holds only a header")
        if (rep.get("counts") or {}).get("answers_outside_vocab"):
            rep.setdefault("problems", []).append(
                f"{rep['counts']['answers_outside_vocab']} of {len(samples)} reference answers are outside the "
                "answer vocabulary (kept: they count as wrong in accuracy and are ignored by a classifier's loss)")
        if videos:
            v = check_videos(samples, max_videos)
            rep["videos_check"] = v
            if v.get("checked") and (v["missing"] or v["unreadable"]):
                rep["status"], status = "problems", 1
        report["splits"][s] = rep
    if all(r["status"] == "absent" for r in report["splits"].values()):
        first = next(iter(report["splits"].values()))["missing"][0]
        raise HarnessError(f"task {task_name!r}: no split has its annotation files; {first}")
    report["ok"] = status == 0
    report["status"] = status
    return report


def _text(report: dict[str, Any]) -> str:
    lines = [f"task {report['task']} ({report['type']}, dataset {report['dataset']}) root {report['root']}"]
    for s, r in report["splits"].items():
        if r["status"] == "absent":
            lines.append(f"  {s}: absent - {r['missing'][0]}" + (f" (+{len(r['missing']) - 1} more)"
                                                                 if len(r["missing"]) > 1 else ""))
            continue
        extra = f", {r['classes_or_answers']} classes/answers" if r.get("classes_or_answers") else ""
        lines.append(f"  {s}: {r['samples']} samples, {r.get('videos', '?')} videos, {r.get('texts', '?')} texts"
                     f"{extra}; {r.get('skipped', 0)} skipped [{r['status']}]")
        for k, v in (r.get("counts") or {}).items():
            lines.append(f"      {k}: {v}")
        for p in r.get("problems", [])[:10]:
            lines.append(f"      problem: {p}")
        v = r.get("videos_check")
        if v is not None:
            if not v.get("checked"):
                lines.append(f"      videos: not checked ({v['reason']}, {v['total']} expected)")
            else:
                lines.append(f"      videos: {v['present']}/{v['total']} present, {len(v['unreadable'])} unreadable "
                             f"or truncated of {v['probed']} checked")
                for m in v["missing"][:10]:
                    lines.append(f"      missing video: {m}")
                for u in v["unreadable"][:10]:
                    lines.append(f"      unreadable video: {u}")
    return "\n".join(lines)


def check_command(args: argparse.Namespace) -> int:
    report = run_check(args.task, args.root, args.split, args.lenient, not args.no_videos, args.max_videos,
                       _options(args.option))
    sys.stdout.write((json.dumps(report, indent=2) if args.json else _text(report)) + "\n")
    return int(report["status"])

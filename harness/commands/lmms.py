"""``lmms export`` writes our tasks as lmms-eval task folders (``lmms-eval --include_path``); ``lmms eval``
delegates an evaluation to lmms-eval (export, then ``lmms-eval`` in its own environment) and prints its scores
beside the run's own.

    python -m harness lmms export --task msvd_qa --root /data/msvd --out lmms_tasks/
    .venv-lmms/bin/lmms-eval --model finsta_host --model_args run=results/runs/<posttrain run> \
        --tasks finsta_msvd_qa --include_path lmms_tasks/ --output_path lmms_out/ --log_samples
    python -m harness lmms eval --run results/runs/<posttrain run> --task msvd_qa --root /data/msvd

The lmms-eval environment comes from ``scripts/setup_lmms.sh``; see ``docs/lmms-eval.md``.
"""

from __future__ import annotations

import argparse

from harness.errors import HarnessError


def _export(args: argparse.Namespace) -> int:
    from harness.lmms.export import export_task
    from tasks.registry import create_task

    for name in args.task:
        task = create_task(name, root=args.root)
        folder = export_task(task, args.out, split=args.split, limit=args.limit)
        print(f"{name}: wrote {folder} (lmms-eval task finsta_{name})")
    tasks = ",".join(f"finsta_{n}" for n in args.task)
    print(f"run: lmms-eval --model finsta_host --model_args run=<results run folder> --tasks {tasks} "
          f"--include_path {args.out} --output_path lmms_out/ --log_samples")
    return 0


def _model_args(args: argparse.Namespace) -> str:
    if args.run:
        parts = [f"run={args.run}"]
    elif args.host:
        parts = [f"host={args.host}"] + ([f"checkpoint={args.checkpoint}"] if args.checkpoint else [])
    else:
        raise HarnessError("lmms eval needs --run <results run folder> or --host <name> [--checkpoint <path>]")
    return ",".join(parts + [f"device={args.device}"] + list(args.model_arg or []))


def _eval(args: argparse.Namespace) -> int:
    import json
    import os
    import subprocess
    from pathlib import Path

    from harness.lmms.export import export_task
    from tasks.registry import create_task

    python = Path(args.lmms_python)
    if not python.is_file():
        raise HarnessError(f"no lmms-eval environment at {python}: run `bash scripts/setup_lmms.sh` "
                           "(or pass --lmms-python)")
    out = Path(args.out)
    export_task(create_task(args.task, root=args.root), out / "tasks", limit=args.limit)
    cmd = [str(python), "-m", "lmms_eval", "--model", "finsta_host", "--model_args", _model_args(args),
           "--tasks", f"finsta_{args.task}", "--include_path", str(out / "tasks"), "--output_path",
           str(out / "results"), "--log_samples", "--batch_size", "1"]
    print("running: " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    if proc.returncode != 0:
        raise HarnessError(f"lmms-eval exited with status {proc.returncode} (its output is above)")
    files = sorted((out / "results").rglob("*_results.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise HarnessError(f"lmms-eval wrote no *_results.json under {out / 'results'}")
    scores = json.loads(files[-1].read_text())["results"][f"finsta_{args.task}"]
    print(f"lmms-eval ({files[-1]}):")
    for key, value in scores.items():
        if isinstance(value, (int, float)) and "stderr" not in key:
            print(f"  {key}: {value:.2f}")
    ours = Path(args.run) / "metrics.json" if args.run else None
    if ours is not None and ours.is_file():
        print(f"this run's own evaluation ({ours}):")
        for ev in json.loads(ours.read_text()).get("evaluations", []):
            print(f"  {ev.get('mode')} {ev.get('split')}: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                                      (ev.get("metrics") or {}).items()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lmms", help="lmms-eval integration: export tasks for --include_path",
                       description="Write our tasks (official-format files read by our loaders) as lmms-eval task "
                                   "folders, scored as our evaluators score them. The model side is the "
                                   "`finsta_host` plugin installed by scripts/setup_lmms.sh.")
    verbs = p.add_subparsers(dest="verb", required=True)
    e = verbs.add_parser("export", help="write lmms-eval task folders")
    e.add_argument("--task", action="append", required=True,
                   help="our task name (repeatable): open-ended / multiple-choice / long-form QA, captioning")
    e.add_argument("--root", default=None, help="dataset root (official layout); default: the task's default")
    e.add_argument("--out", default="lmms_tasks", help="folder to pass to --include_path (default lmms_tasks)")
    e.add_argument("--split", default=None, help="split to export (default: the task's eval split)")
    e.add_argument("--limit", type=int, default=None, help="first N samples only (smoke tests)")
    e.set_defaults(func=_export)
    v = verbs.add_parser("eval", help="evaluate a host / post-trained run with lmms-eval (its own environment)")
    v.add_argument("--run", default=None, help="a post-training run folder of the results store")
    v.add_argument("--host", default=None, help="host name (instead of --run)")
    v.add_argument("--checkpoint", default=None, help="host weights (with --host)")
    v.add_argument("--task", required=True, help="our task name (QA, multiple choice, captioning)")
    v.add_argument("--root", default=None, help="dataset root (official layout)")
    v.add_argument("--limit", type=int, default=None, help="first N samples only")
    v.add_argument("--device", default="auto", help="cpu | cuda | auto")
    v.add_argument("--model-arg", action="append", help="extra finsta_host model arg key=value (repeatable)")
    v.add_argument("--out", default="lmms_out", help="folder for the exported task and lmms-eval's output")
    v.add_argument("--lmms-python", default=".venv-lmms/bin/python",
                   help="python of the lmms-eval environment (default .venv-lmms/bin/python)")
    v.set_defaults(func=_eval)

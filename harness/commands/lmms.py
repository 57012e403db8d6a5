"""``lmms export``: write our tasks as lmms-eval task folders (``lmms-eval --include_path``).

    python -m harness lmms export --task msvd_qa --root /data/msvd --out lmms_tasks/
    .venv-lmms/bin/lmms-eval --model finsta_host --model_args run=results/runs/<posttrain run> \
        --tasks finsta_msvd_qa --include_path lmms_tasks/ --output_path lmms_out/ --log_samples

The lmms-eval environment comes from ``scripts/setup_lmms.sh``; see ``docs/lmms-eval.md``.
"""

from __future__ import annotations

import argparse


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

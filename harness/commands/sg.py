"""``python -m harness sg parse``: build holistic scene graphs (paper sec 3) for a corpus or a task split.

    python -m harness sg parse --corpus pairs.csv --out sg/ --classes vg1600.txt \
        --detector fasterrcnn --detector-checkpoint frcnn_vg.pth --cluster slurm --shard-size 1000

A corpus is CSV (header ``id,video,caption``) or JSONL with the same keys; ``--task NAME --split SPLIT``
writes such a JSONL from the task's samples (first text of each) and parses it. Shards already complete are
skipped (resume). Unreadable videos and empty captions are recorded in ``index.json`` and counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from harness.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    sg = subparsers.add_parser("sg", help="scene-graph construction (paper section 3)")
    sub = sg.add_subparsers(dest="sg_command", required=True)
    p = sub.add_parser("parse", help="build TSG/DSG/HSG for a corpus, sharded and resumable")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", help="CSV/JSONL of (id, video, caption)")
    src.add_argument("--task", help="task name whose split to parse (with --split)")
    p.add_argument("--split", default="train")
    p.add_argument("--root", default=None, help="dataset root for --task")
    p.add_argument("--out", required=True, help="output directory (the graph store)")
    p.add_argument("--classes", default="", help="detector class names, one per line")
    p.add_argument("--detector", choices=("fasterrcnn", "hf"), default="fasterrcnn")
    p.add_argument("--detector-checkpoint", default="", help="state dict (fasterrcnn) or model dir (hf)")
    p.add_argument("--random-weights", action="store_true", help="allow a detector without checkpoint (testing)")
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--min-size", type=int, default=600, help="Faster R-CNN resize (shorter side)")
    p.add_argument("--relation-head", default="")
    p.add_argument("--attribute-head", default="")
    p.add_argument("--clip-checkpoint", default="")
    p.add_argument("--spacy-model", default="en_core_web_sm")
    p.add_argument("--gamma-d", type=float, default=0.6)
    p.add_argument("--gamma-c", type=float, default=0.9)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--sample-fps", type=float, default=2.0)
    p.add_argument("--min-keyframes", type=int, default=10)
    p.add_argument("--max-keyframes", type=int, default=50)
    p.add_argument("--cluster", choices=("debug", "local", "slurm"), default="local",
                   help="submitit executor: debug = in process, local = subprocesses, slurm = array job")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--timeout-min", type=int, default=240)
    p.set_defaults(func=parse_command)


def _task_corpus(args: argparse.Namespace) -> str:
    from tasks.registry import create_task

    task = create_task(args.task, root=args.root)
    path = os.path.join(args.out, f"corpus-{args.task}-{args.split}.jsonl")
    os.makedirs(args.out, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for s in task.samples(args.split):
            f.write(json.dumps({"id": s.id, "video": s.video or "", "caption": (s.texts or [""])[0]}) + "\n")
    os.replace(tmp, path)
    return path


def parse_command(args: argparse.Namespace) -> int:
    from finsta_core.sg.detectors import read_class_names
    from finsta_core.sg.pipeline import CorpusError, SGPipelineConfig, read_corpus, run_corpus
    from finsta_core.sg.tsg import SpacyModelError, load_spacy

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.detector == "fasterrcnn" and not args.detector_checkpoint and not args.random_weights:
        raise HarnessError("--detector-checkpoint is required (a local Faster R-CNN state dict); "
                           "--random-weights runs untrained weights for testing only")
    if args.detector == "hf" and not args.detector_checkpoint:
        raise HarnessError("--detector hf needs --detector-checkpoint DIR (a save_pretrained directory)")
    for flag in ("detector_checkpoint", "relation_head", "attribute_head", "clip_checkpoint"):
        v = getattr(args, flag)
        if v and not os.path.exists(v):
            raise HarnessError(f"--{flag.replace('_', '-')} {v} does not exist")
    try:
        if args.detector == "fasterrcnn" or args.classes:
            read_class_names(args.classes)
        corpus = args.corpus or _task_corpus(args)
        records = read_corpus(corpus)
        load_spacy(args.spacy_model)  # fail fast (and log a fallback) before any job starts
    except (CorpusError, FileNotFoundError, ValueError, SpacyModelError) as err:
        raise HarnessError(str(err)) from None
    cfg = SGPipelineConfig(
        classes=args.classes, detector=args.detector, detector_checkpoint=args.detector_checkpoint,
        score_threshold=args.score_threshold, min_size=args.min_size, max_size=max(args.min_size, 1000),
        relation_head=args.relation_head, attribute_head=args.attribute_head, clip_checkpoint=args.clip_checkpoint,
        spacy_model=args.spacy_model, gamma_d=args.gamma_d, gamma_c=args.gamma_c, shard_size=args.shard_size,
        keyframes={"sample_fps": args.sample_fps, "min_k": args.min_keyframes, "max_k": args.max_keyframes})
    slurm = {"timeout_min": args.timeout_min}
    if args.cluster == "slurm" and args.slurm_partition:
        slurm["slurm_partition"] = args.slurm_partition
    summary = run_corpus(cfg, corpus, args.out, cluster=args.cluster, slurm=slurm)
    reasons: dict[str, int] = {}
    for f in summary["failures"]:
        key = f["reason"].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    print(f"sg parse: {len(records)} records, {summary['n_ok']} graphs, {summary['n_failed']} skipped "
          f"{reasons or ''}; shards {summary['shards']} (ran {len(summary['pending_run'])}, missing "
          f"{summary['missing_shards']}); track continuation rate {summary['track_continuation_rate']:.3f}")
    from finsta_core.sg.vocab import VocabularyFilter

    vocab = VocabularyFilter.load(os.path.join(args.out, "vocab.json"))
    print("label statistics (Table 13 style; kept = after the frequency filter):")
    print(vocab.format_table())
    print(f"store: {os.path.abspath(args.out)}")
    return 0 if not summary["missing_shards"] else 1

"""``python -m harness sg parse``: build holistic scene graphs (paper sec 3) for a corpus or a task split.

    python -m harness sg parse --mixture webvid25k_hdvila25k --corpus-file webvid=results_2M_train.csv \
        --corpus-file hdvila=hdvila_part0.jsonl --out sg/ --classes vg1600.txt \
        --detector fasterrcnn --detector-checkpoint frcnn_vg.pth --cluster slurm --shard-size 1000
    python -m harness sg parse --corpus pairs.csv --out sg/ ...          # one file (plain / WebVid / VILA)
    python -m harness sg parse --task msrvtt_ret --split train --out sg/ ...   # a task's split

The corpus is resolved by :mod:`harness.sources` (the same code the planner uses, so a store built here has
the fingerprint a posttrain run expects), written to ``<out>/corpus.jsonl`` and parsed shard by shard. The
store is keyed by the corpus fingerprint and the parser / detector configuration: shards complete under the
same key are skipped (resume); a store built from another corpus or configuration is refused unless
``--rebuild`` is given. Unreadable videos and empty captions are recorded in ``index.json`` and counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

from harness.errors import HarnessError

# (dest, flag, default) of the options that define the parser / detector configuration (the store key)
_PIPELINE_FLAGS: tuple[tuple[str, str, Any], ...] = (
    ("classes", "--classes", ""), ("detector", "--detector", "fasterrcnn"),
    ("detector_checkpoint", "--detector-checkpoint", ""), ("random_weights", "--random-weights", False),
    ("score_threshold", "--score-threshold", 0.3), ("min_size", "--min-size", 600),
    ("detector_size", "--detector-size", 512),
    ("relation_head", "--relation-head", ""), ("attribute_head", "--attribute-head", ""),
    ("clip_checkpoint", "--clip-checkpoint", ""), ("spacy_model", "--spacy-model", "en_core_web_sm"),
    ("gamma_d", "--gamma-d", 0.6), ("gamma_c", "--gamma-c", 0.9), ("shard_size", "--shard-size", 1000),
    ("sample_fps", "--sample-fps", 2.0), ("min_keyframes", "--min-keyframes", 10),
    ("max_keyframes", "--max-keyframes", 50))


def register(subparsers: argparse._SubParsersAction) -> None:
    sg = subparsers.add_parser("sg", help="scene-graph construction (paper section 3)")
    sub = sg.add_subparsers(dest="sg_command", required=True)
    p = sub.add_parser("parse", help="build TSG/DSG/HSG for a corpus, sharded and resumable")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", help="one corpus file: plain id,video,caption CSV/JSONL, WebVid CSV or VILA JSONL")
    src.add_argument("--mixture", help="a named mixture (webvid25k_hdvila25k, lfvila30k, ...) with --corpus-file")
    src.add_argument("--task", help="task name whose split to parse (with --split)")
    p.add_argument("--corpus-format", default="auto", choices=("auto", "plain", "webvid", "hdvila", "lfvila"))
    p.add_argument("--corpus-file", action="append", default=[], metavar="KEY=PATH",
                   help="annotation file of a mixture source (repeat per source)")
    p.add_argument("--video-root", action="append", default=[], metavar="[KEY=]DIR",
                   help="video directory of a source (default: next to its annotation file)")
    p.add_argument("--video-template", action="append", default=[], metavar="[KEY=]TEMPLATE",
                   help="video path template of a source, e.g. '{page_dir}/{videoid}.mp4'")
    p.add_argument("--corpus-n", action="append", default=[], metavar="[KEY=]N",
                   help="pairs drawn from a source (default: the mixture's count; a single file: all)")
    p.add_argument("--corpus-seed", type=int, default=0, help="sampling seed of the mixture")
    p.add_argument("--split", default="train")
    p.add_argument("--root", default=None, help="dataset root for --task")
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE", help="task option (YAML value)")
    p.add_argument("--limit", type=int, default=None, help="--task: only the first N samples of the split")
    p.add_argument("--out", required=True, help="output directory (the graph store)")
    p.add_argument("--rebuild", action="store_true",
                   help="delete a store built from another corpus or configuration and parse again")
    p.add_argument("--classes", default="", help="detector class names, one per line")
    p.add_argument("--detector", choices=("fasterrcnn", "hf"), default="fasterrcnn")
    p.add_argument("--detector-checkpoint", default="", help="state dict (fasterrcnn) or model dir (hf)")
    p.add_argument("--random-weights", action="store_true", help="allow a detector without checkpoint (testing)")
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--min-size", type=int, default=600, help="Faster R-CNN resize (shorter side)")
    p.add_argument("--detector-size", type=int, default=512, help="--detector hf: input size (square)")
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


def _keyed(values: list[str], flag: str, single: str | None = None) -> dict[str, str]:
    """``["webvid=a", "hdvila=b"]`` -> dict; a bare value is allowed for a single-file corpus (key ``single``)."""
    out: dict[str, str] = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep:
            if single is None:
                raise HarnessError(f"{flag} {v!r}: expected KEY=VALUE (KEY = a source of the mixture)")
            key, val = single, v
        if not key or not val:
            raise HarnessError(f"{flag} {v!r}: expected KEY=VALUE")
        out[key] = val
    return out


def _corpus_ref(args: argparse.Namespace) -> Any:
    import yaml

    from harness.sources import corpus_ref_from_file, corpus_ref_from_mixture, corpus_ref_from_task
    from tasks.registry import create_task

    if args.task:
        opts: dict[str, Any] = {}
        for kv in args.task_option:
            k, sep, v = kv.partition("=")
            if not sep or not k:
                raise HarnessError(f"--task-option {kv!r}: expected KEY=VALUE")
            opts[k] = yaml.safe_load(v)
        if args.limit is not None and args.limit < 1:
            raise HarnessError(f"--limit must be >= 1, got {args.limit}")
        try:
            task = create_task(args.task, root=args.root, **opts)
        except (LookupError, TypeError, ValueError, RuntimeError) as err:
            raise HarnessError(f"--task {args.task}: {str(err).splitlines()[0]}") from None
        if args.split not in task.splits:
            raise HarnessError(f"task {args.task!r} has no split {args.split!r} (splits: {', '.join(task.splits)})")
        return corpus_ref_from_task(task, args.split, args.limit)
    try:
        if args.corpus:
            root = next(iter(_keyed(args.video_root, "--video-root", "_").values()), None)
            n_one = next(iter(_keyed(args.corpus_n, "--corpus-n", "_").values()), None)
            template = next(iter(_keyed(args.video_template, "--video-template", "_").values()), None)
            return corpus_ref_from_file(args.corpus, args.corpus_format, root,
                                        int(n_one) if n_one is not None else None, args.corpus_seed, template)
        n = {k: int(v) for k, v in _keyed(args.corpus_n, "--corpus-n").items()}
        return corpus_ref_from_mixture(args.mixture, _keyed(args.corpus_file, "--corpus-file"),
                                       _keyed(args.video_root, "--video-root"), n, args.corpus_seed,
                                       _keyed(args.video_template, "--video-template"))
    except ValueError as err:
        if isinstance(err, HarnessError):
            raise
        raise HarnessError(str(err)) from None


def _pipeline_args(args: argparse.Namespace) -> list[str]:
    """The flags of ``args`` that differ from their defaults (stored in the manifest; part of the command)."""
    out: list[str] = []
    for dest, flag, default in _PIPELINE_FLAGS:
        v = getattr(args, dest)
        if v == default:
            continue
        if isinstance(v, bool):
            out.append(flag)
        else:
            v = os.path.abspath(v) if dest in ("classes", "detector_checkpoint", "relation_head", "attribute_head",
                                                "clip_checkpoint") and v else v
            out += [flag, str(v)]
    return out


def _progress(done: int, total: int, res: dict[str, Any], elapsed: float) -> None:
    eta = elapsed / done * (total - done)
    what = res.get("error") or (f"{res.get('n_ok', 0)} graphs, {res.get('n_failed', 0)} skipped"
                               if not res.get("skipped") else "already complete")
    print(f"[sg parse] shard {res.get('shard')} ({done}/{total}): {what}; {elapsed:.0f}s elapsed, ETA {eta:.0f}s",
          flush=True)


def parse_command(args: argparse.Namespace) -> int:
    from finsta_core.sg.detectors import read_class_names
    from finsta_core.sg.pipeline import (
        CorpusError,
        SGPipelineConfig,
        cached_pipeline,
        pipeline_fingerprint,
        read_corpus,
        run_corpus,
    )
    from finsta_core.sg.store import CORPUS, clear_store, read_manifest, store_key, write_manifest
    from finsta_core.sg.tsg import SpacyModelError, load_spacy
    from finsta_core.sg.vocab import VocabularyFilter
    from harness.sources import materialize, sg_parse_command

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.shard_size < 1:
        raise HarnessError(f"--shard-size must be >= 1 record per shard, got {args.shard_size}")
    if not args.sample_fps > 0:
        raise HarnessError(f"--sample-fps must be > 0 frames per second, got {args.sample_fps}")
    if not 1 <= args.min_keyframes <= args.max_keyframes:
        raise HarnessError(f"keyframe bounds must satisfy 1 <= --min-keyframes <= --max-keyframes, got "
                           f"{args.min_keyframes} and {args.max_keyframes}")
    if args.detector == "fasterrcnn" and not args.detector_checkpoint and not args.random_weights:
        raise HarnessError("--detector-checkpoint is required (a local Faster R-CNN state dict); "
                           "--random-weights runs untrained weights for testing only")
    if args.detector == "hf" and not args.detector_checkpoint:
        raise HarnessError("--detector hf needs --detector-checkpoint DIR (a save_pretrained directory)")
    for flag in ("detector_checkpoint", "relation_head", "attribute_head", "clip_checkpoint"):
        v = getattr(args, flag)
        if v and not os.path.exists(v):
            raise HarnessError(f"--{flag.replace('_', '-')} {v} does not exist")
    if args.clip_checkpoint and os.path.isdir(args.clip_checkpoint) and not os.listdir(args.clip_checkpoint):
        raise HarnessError(f"--clip-checkpoint {args.clip_checkpoint} is an empty directory (save a CLIPModel and "
                           "its tokenizer there with save_pretrained)")
    try:
        cfg = SGPipelineConfig(
            classes=os.path.abspath(args.classes) if args.classes else "", detector=args.detector,
            detector_checkpoint=os.path.abspath(args.detector_checkpoint) if args.detector_checkpoint else "",
            score_threshold=args.score_threshold, min_size=args.min_size, max_size=max(args.min_size, 1000),
            hf_size=args.detector_size,
            relation_head=args.relation_head, attribute_head=args.attribute_head,
            clip_checkpoint=args.clip_checkpoint, spacy_model=args.spacy_model, gamma_d=args.gamma_d,
            gamma_c=args.gamma_c, shard_size=args.shard_size,
            keyframes={"sample_fps": args.sample_fps, "min_k": args.min_keyframes, "max_k": args.max_keyframes})
        if args.detector == "fasterrcnn" or args.classes:
            read_class_names(args.classes)
        ref = _corpus_ref(args)
        load_spacy(args.spacy_model)  # fail fast (and log a fallback) before any job starts
    except (CorpusError, FileNotFoundError, ValueError, SpacyModelError) as err:
        raise HarnessError(str(err).splitlines()[0]) from None
    out = os.path.abspath(args.out)
    key = store_key(ref.fingerprint, pipeline_fingerprint(cfg))
    try:
        old = read_manifest(out)
    except ValueError as err:
        if not args.rebuild:
            raise HarnessError(str(err)) from None
        old = None
    has_shards = os.path.isdir(os.path.join(out, "shards")) and bool(os.listdir(os.path.join(out, "shards")))
    if (old is not None and old.get("fingerprint") != key) or (old is None and has_shards):
        if not args.rebuild:
            why = ("it has no manifest (an older or foreign store)" if old is None else
                   "it was built from another corpus" if old.get("corpus_fingerprint") != ref.fingerprint else
                   "it was built with another parser / detector configuration")
            raise HarnessError(f"store {out}: {why}; pass --rebuild to delete its shards and parse again, or choose "
                               "another --out")
        clear_store(out)
        old = None
    try:  # build the models once here: a bad checkpoint is one line now, not a traceback in every shard
        cached_pipeline(cfg)
    except Exception as err:  # noqa: BLE001 - any loading failure of a user-given file becomes one line
        raise HarnessError(f"cannot build the scene-graph pipeline: {str(err).strip().splitlines()[0]}") from None
    corpus_path = os.path.join(out, CORPUS)
    reader: dict[str, Any] = {}
    if old is None or not os.path.exists(corpus_path):
        try:
            records, stats = materialize(ref)
        except (ValueError, FileNotFoundError, KeyError) as err:
            raise HarnessError(str(err).splitlines()[0]) from None
        if not records:
            raise HarnessError(f"corpus {ref.name!r} has no records to parse")
        from finsta_core.io import atomic_write_text

        atomic_write_text(corpus_path, "".join(json.dumps(r) + "\n" for r in records))
        reader = {path: {"yielded": st.yielded, "skipped": st.skipped, "reasons": st.reasons}
                  for path, st in stats.items()}
        n_records = len(records)
        write_manifest(out, {
            "format": 2, "corpus": {"kind": ref.kind, "name": ref.name, "spec": ref.spec},
            "corpus_fingerprint": ref.fingerprint, "pipeline": {**cfg.__dict__},
            "pipeline_fingerprint": pipeline_fingerprint(cfg), "fingerprint": key,
            "pipeline_args": _pipeline_args(args), "n_records": n_records, "shard_size": cfg.shard_size,
            "n_shards": max(1, -(-n_records // cfg.shard_size)),
            "reader": reader, "command": sg_parse_command(ref, out, _pipeline_args(args))})
    else:
        n_records = len(read_corpus(corpus_path))
        reader = old.get("reader", {})
    slurm = {"timeout_min": args.timeout_min}
    if args.cluster == "slurm" and args.slurm_partition:
        slurm["slurm_partition"] = args.slurm_partition
    print(f"[sg parse] corpus {ref.name!r} ({ref.kind}, fingerprint {ref.fingerprint}): {n_records} records -> "
          f"{out}", flush=True)
    summary = run_corpus(cfg, corpus_path, out, cluster=args.cluster, slurm=slurm, fingerprint=key,
                         progress=_progress)
    reasons: dict[str, int] = {}
    for f in summary["failures"]:
        k = f["reason"].split(":")[0]
        reasons[k] = reasons.get(k, 0) + 1
    skipped_reader = sum(int(r.get("skipped", 0)) for r in reader.values())
    print(f"sg parse: {n_records} records, {summary['n_ok']} graphs, {summary['n_failed']} skipped "
          f"{reasons or ''}; shards {summary['shards']} (ran {len(summary['pending_run'])}, missing "
          f"{summary['missing_shards']}); track continuation rate {summary['track_continuation_rate']:.3f}")
    if skipped_reader:
        print(f"corpus readers skipped {skipped_reader} records before parsing (see manifest.json 'reader')")
    for e in summary.get("shard_errors", []):
        print(f"error: {e}")
    vocab = VocabularyFilter.load(os.path.join(out, "vocab.json"))
    print("label statistics (Table 13 style; kept = after the frequency filter):")
    print(vocab.format_table())
    print(f"store: {out}")
    return 0 if not summary["missing_shards"] else 1

"""End-to-end scene-graph construction over a corpus of (id, video, caption): TSG + keyframes + DSG + HSG,
sharded and resumable, one submitit array task per shard (``harness sg parse`` drives it).

Unreadable videos, empty captions, captions without any scene-graph node and videos without detections are
skipped and recorded in the shard's failures (never a crash). Shards are written under the store key
(:func:`~finsta_core.sg.store.store_key` of the corpus fingerprint and :func:`pipeline_fingerprint`), so a
resumed run never reuses a shard parsed from another corpus or with another parser / detector configuration.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from finsta_core.sg.keyframes import KeyframeConfig, VideoDecodeError, extract_keyframes
from finsta_core.sg.store import digest, finalize, path_fingerprint, shard_done, write_shard

log = logging.getLogger(__name__)


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file and record."""


@dataclass
class CorpusRecord:
    id: str
    video: str
    caption: str
    span: tuple[float, float] | None = None  # (start, end) seconds of a clip inside ``video``


def read_corpus(path: str | os.PathLike) -> list[CorpusRecord]:
    """Read a CSV (header with ``id``, ``video`` or ``video_path``, ``caption``) or JSONL corpus.

    Relative video paths are resolved against the corpus file's directory. Empty captions are kept (the
    pipeline records them as failures); duplicate ids and missing columns raise :class:`CorpusError`.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CorpusError(f"corpus file {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    rows: list[dict[str, Any]] = []
    if path.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise CorpusError(f"{path}:{n}: not valid JSON ({err.msg})") from None
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a byte-order mark is not a column name
            rows = list(csv.DictReader(f))
    out, seen = [], set()
    for n, r in enumerate(rows, 1):
        vid = r.get("video", r.get("video_path"))
        if r.get("id") in (None, "") or vid in (None, "") or "caption" not in r:
            raise CorpusError(f"{path}: record {n} needs 'id', 'video' (or 'video_path') and 'caption'; got "
                              f"keys {sorted(r)}")
        sid = str(r["id"])
        if sid in seen:
            raise CorpusError(f"{path}: record {n}: duplicate id {sid!r}")
        seen.add(sid)
        vid = str(vid)
        span = r.get("clip_span")
        if span is not None:
            try:
                span = (float(span[0]), float(span[1]))
            except (TypeError, ValueError, IndexError, KeyError):
                raise CorpusError(f"{path}: record {n}: field 'clip_span' must be [start, end] seconds, got "
                                  f"{span!r}") from None
        out.append(CorpusRecord(sid, vid if os.path.isabs(vid) else os.path.join(base, vid),
                                str(r["caption"] or ""), span))
    return out


@dataclass
class SGPipelineConfig:
    """Everything a shard worker needs (plain data, so it pickles into submitit jobs)."""

    classes: str = ""  # detector class names file (one per line)
    detector: str = "fasterrcnn"  # "fasterrcnn" | "hf"
    detector_checkpoint: str = ""  # state dict (fasterrcnn) or directory (hf); "" = random weights (tests)
    score_threshold: float = 0.3
    max_objects: int = 40
    min_size: int = 600
    max_size: int = 1000
    hf_size: int = 512  # transformers detectors: frames resized to hf_size x hf_size
    relation_head: str = ""  # save_head checkpoint; "" = no relation nodes
    attribute_head: str = ""
    clip_checkpoint: str = ""  # CLIPModel directory for Eq 7; "" = n-gram label scorer only
    spacy_model: str = "en_core_web_sm"
    gamma_d: float = 0.6
    gamma_c: float = 0.9
    calibration: str = "softmax"
    shard_size: int = 1000
    keyframes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse settings that cannot work before any shard starts (one line naming the field)."""
        if self.detector not in ("fasterrcnn", "hf"):
            raise ValueError(f"unknown detector {self.detector!r}; choose 'fasterrcnn' or 'hf'")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1 record per shard, got {self.shard_size}")
        for name in ("score_threshold", "gamma_d", "gamma_c"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_objects < 1 or self.min_size < 1 or self.max_size < self.min_size or self.hf_size < 1:
            raise ValueError(f"need max_objects >= 1, 1 <= min_size <= max_size and hf_size >= 1, got max_objects="
                             f"{self.max_objects}, min_size={self.min_size}, max_size={self.max_size}, "
                             f"hf_size={self.hf_size}")
        if self.calibration not in ("softmax", "raw"):
            raise ValueError(f"calibration must be 'softmax' or 'raw', got {self.calibration!r}")
        unknown = sorted(set(self.keyframes) - set(KeyframeConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown keyframe options {unknown}")
        KeyframeConfig(**self.keyframes)  # validates sample_fps and the keyframe bounds


_PATH_FIELDS = ("classes", "detector_checkpoint", "relation_head", "attribute_head", "clip_checkpoint")


def pipeline_fingerprint(cfg: SGPipelineConfig) -> str:
    """16 hex digits over the parser / detector configuration and the files it names (size + mtime)."""
    d = asdict(cfg)
    d["keyframes"] = asdict(KeyframeConfig(**cfg.keyframes))  # defaults spelled out
    d["files"] = {k: path_fingerprint(d[k]) for k in _PATH_FIELDS}
    return digest(d)


class SGPipeline:
    """Models are built once per worker and reused for every sample of its shard."""

    def __init__(self, cfg: SGPipelineConfig) -> None:
        from finsta_core.sg.detectors import FasterRCNNDetector, HFDetector, read_class_names
        from finsta_core.sg.heads import HeadAttributeClassifier, HeadRelationClassifier, load_head
        from finsta_core.sg.link import CLIPScorer, NgramTextScorer
        from finsta_core.sg.tsg import TSGParser, TSGParserConfig

        self.cfg = cfg
        self.kf = KeyframeConfig(**cfg.keyframes)
        self.tsg = TSGParser(TSGParserConfig(spacy_model=cfg.spacy_model))
        if cfg.detector == "fasterrcnn":
            self.detector = FasterRCNNDetector(read_class_names(cfg.classes), cfg.detector_checkpoint or None,
                                               cfg.score_threshold, cfg.max_objects, cfg.min_size, cfg.max_size)
        elif cfg.detector == "hf":
            classes = read_class_names(cfg.classes) if cfg.classes else None
            self.detector = HFDetector(cfg.detector_checkpoint, classes, cfg.score_threshold, cfg.max_objects,
                                       image_size=(cfg.hf_size, cfg.hf_size))
        else:
            raise ValueError(f"unknown detector {cfg.detector!r}; choose 'fasterrcnn' or 'hf'")
        self.relations = HeadRelationClassifier(load_head(cfg.relation_head)) if cfg.relation_head else None
        self.attributes = HeadAttributeClassifier(load_head(cfg.attribute_head)) if cfg.attribute_head else None
        self.clip = CLIPScorer(cfg.clip_checkpoint) if cfg.clip_checkpoint else None
        self.label_scorer = self.clip if self.clip is not None else NgramTextScorer()

    def run_shard(self, records: list[CorpusRecord], out_dir: str, shard: int,
                  fingerprint: str = "") -> dict[str, Any]:
        import torch

        from finsta_core.graphs.types import NodeType, SceneGraphError
        from finsta_core.sg.dsg import build_dsg
        from finsta_core.sg.link import link_hsg
        from finsta_core.sg.vocab import VocabularyFilter

        graphs, failures = [], []
        tsgs = self.tsg.parse_many([r.caption for r in records])
        continued = later = 0
        t0, every = time.time(), max(1, len(records) // 10)
        for i, (rec, tsg) in enumerate(zip(records, tsgs)):
            if i and i % every == 0:
                log.info("shard %d: %d/%d records (%.1f s)", shard, i, len(records), time.time() - t0)
            def fail(reason: str, rec: CorpusRecord = rec) -> None:
                failures.append({"id": rec.id, "video": rec.video, "reason": reason})

            if not rec.caption.strip():
                fail("empty caption")
                continue
            if tsg.num_nodes == 0:
                fail("caption produced no scene-graph nodes")
                continue
            try:
                frames, times = extract_keyframes(rec.video, self.kf, rec.span)
            except VideoDecodeError as err:
                fail(f"unreadable video: {err}")
                continue
            size = (int(frames.shape[-1]), int(frames.shape[-2]))
            dsg = build_dsg(self.detector(frames), times, size, self.relations, self.attributes,
                            self.cfg.gamma_d, self.cfg.max_objects)
            if dsg.num_nodes == 0:
                fail("no objects detected in any keyframe")
                continue
            vis = None
            if self.clip is not None:
                d_obj = (dsg.node_type == NodeType.OBJECT).nonzero().flatten()
                t_lab = [tsg.labels[i] for i in (tsg.node_type == NodeType.OBJECT).nonzero().flatten().tolist()]
                if t_lab:
                    vis = self.clip.text_embed(t_lab) @ self.clip.image_embed(frames, dsg.frame[d_obj],
                                                                              dsg.boxes[d_obj]).T
            try:
                hsg = link_hsg(tsg, dsg, self.label_scorer, vis, self.cfg.gamma_c, self.cfg.calibration,
                               sample_id=rec.id)
            except SceneGraphError as err:
                fail(f"invalid scene graph: {err}")
                continue
            obj = dsg.node_type == NodeType.OBJECT
            later += int((obj & (dsg.frame > 0)).sum())
            continued += dsg.temporal_index.shape[1]
            graphs.append(hsg)
        vocab = VocabularyFilter().update(graphs)
        edge_rate = [g.dsg.meta.get("cross_edge_rate", 0.0) for g in graphs]
        stats = {"n_ok": len(graphs), "n_failed": len(failures), "continued": continued,
                 "objects_after_first": later, "cross_edge_rate": float(torch.tensor(edge_rate).mean())
                 if edge_rate else 0.0, "vocab": {k: dict(c) for k, c in vocab.counts.items()}}
        write_shard(out_dir, shard, graphs, failures, stats, fingerprint)
        return {k: v for k, v in stats.items() if k != "vocab"}


def run_shard_job(cfg_dict: dict[str, Any], corpus: str, out_dir: str, shard: int,
                  fingerprint: str = "") -> dict[str, Any]:
    """submitit entry point: process shard ``shard`` of ``corpus`` unless it is complete for ``fingerprint``."""
    cfg = SGPipelineConfig(**cfg_dict)
    if shard_done(out_dir, shard, fingerprint):
        return {"shard": shard, "skipped": True}
    records = read_corpus(corpus)[shard * cfg.shard_size:(shard + 1) * cfg.shard_size]
    return {"shard": shard, **cached_pipeline(cfg).run_shard(records, out_dir, shard, fingerprint)}


_PIPELINES: dict[str, SGPipeline] = {}


def cached_pipeline(cfg: SGPipelineConfig) -> SGPipeline:
    """The pipeline of ``cfg``, built once per process (in-process executors and array tasks that run several
    shards reuse the loaded detector, parser and CLIP model)."""
    key = pipeline_fingerprint(cfg)
    if key not in _PIPELINES:
        _PIPELINES.clear()  # keep one: models are large
        _PIPELINES[key] = SGPipeline(cfg)
    return _PIPELINES[key]


def run_corpus(cfg: SGPipelineConfig, corpus: str, out_dir: str, cluster: str = "debug",
               slurm: dict[str, Any] | None = None, fingerprint: str = "",
               progress: Any = None) -> dict[str, Any]:
    """Parse a whole corpus as a submitit array (one task per pending shard), then finalize the store.

    Args:
        fingerprint: the store key; shards complete under it are skipped (resume), others are (re)parsed.
        progress: ``callable(done, total, result, elapsed_s)`` called after each shard finishes.
    """
    import submitit

    n = len(read_corpus(corpus))
    n_shards = max(1, -(-n // cfg.shard_size))
    pending = [s for s in range(n_shards) if not shard_done(out_dir, s, fingerprint)]
    os.makedirs(out_dir, exist_ok=True)
    failed: list[str] = []
    if pending:
        ex = submitit.AutoExecutor(folder=os.path.join(out_dir, "submitit"), cluster=cluster)
        ex.update_parameters(timeout_min=int((slurm or {}).get("timeout_min", 240)),
                             **{k: v for k, v in (slurm or {}).items() if k != "timeout_min"})
        jobs = ex.map_array(run_shard_job, [asdict(cfg)] * len(pending), [corpus] * len(pending),
                            [out_dir] * len(pending), pending, [fingerprint] * len(pending))
        t0 = time.time()
        for k, (shard, j) in enumerate(zip(pending, jobs), 1):
            try:
                res = j.result()
            except Exception as err:  # noqa: BLE001 - a crashed shard is reported, the others go on
                res = {"shard": shard, "error": f"{type(err).__name__}: {str(err).strip().splitlines()[-1:]}"}
                failed.append(f"shard {shard}: {res['error']}")
            log.info("shard result: %s", res)
            if progress is not None:
                progress(k, len(pending), res, time.time() - t0)
    summary = finalize(out_dir, n_shards, fingerprint)
    summary["pending_run"] = pending
    summary["shard_errors"] = failed
    return summary

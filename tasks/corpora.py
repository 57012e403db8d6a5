"""Post-training video-text corpora (paper sec 6.1: 25K WebVid-2.5M + 25K HD-VILA-100M pairs; 30K LF-VILA-8M).

Readers yield :class:`~tasks.base.Sample` (``texts=[caption]``, ``video`` path, ``extra["clip_span"]`` when the
pair is a window of a longer video):

* WebVid-style CSV (``results_2M_train.csv`` / ``results_10M_train.csv``): comma CSV with a header containing
  ``videoid`` and ``name`` (the caption), usually ``page_dir``, ``duration``, ``contentUrl``. Video path from
  ``video_template`` (default ``{page_dir}/{videoid}.mp4``, the layout of the common download scripts).
* HD-VILA / LF-VILA-style JSON lines: either flat records (one pair per line: id in ``clip_id``/``id``/
  ``video_id``, text in ``text``/``caption``/``asr``/``name``, optional ``span``), or the official HD-VILA
  metadata nesting ``{"video_id", "url", "clip": [{"clip_id", "span": ["hh:mm:ss.mmm", ...], "text"?}]}``. The
  official metadata has no transcript: clips without text are skipped and counted, never paired with "".

:func:`sample_pairs` draws N pairs with reservoir sampling from a seed (one pass, O(N) memory): the same file,
N and seed give the same pairs on any machine. :func:`build_corpus` mixes several sources (paper: 25K + 25K).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tasks.base import Sample
from tasks.datasets.common import AnnotationError

_ID_KEYS = ("clip_id", "id", "video_id", "videoid")
_TEXT_KEYS = ("text", "caption", "asr", "name", "sentence")


@dataclass
class CorpusStats:
    """What a reader saw: pairs yielded, records skipped and why (first 20 reasons)."""

    yielded: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    def skip(self, msg: str) -> None:
        self.skipped += 1
        if len(self.reasons) < 20:
            self.reasons.append(msg)


def parse_timestamp(x: Any) -> float:
    """``"00:04:52.140"`` / ``"292.14"`` / ``292.14`` -> seconds."""
    if isinstance(x, (int, float)):
        return float(x)
    parts = str(x).strip().split(":")
    try:
        secs = 0.0
        for p in parts:
            secs = secs * 60 + float(p)
        return secs
    except ValueError as err:
        raise ValueError(f"bad timestamp {x!r}") from err


def _video(root: Path | None, template: str, fields: dict[str, Any]) -> str:
    rel = template.format(**fields)
    return str(root / rel) if root is not None else rel


def read_webvid_csv(path: str | Path, video_root: str | Path | None = None,
                    video_template: str = "{page_dir}/{videoid}.mp4", stats: CorpusStats | None = None
                    ) -> Iterator[Sample]:
    """Pairs of a WebVid-style CSV (see module docstring)."""
    path, stats = Path(path), stats if stats is not None else CorpusStats()
    root = Path(video_root) if video_root is not None else None
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"videoid", "name"} <= cols:
            raise AnnotationError(f"{path}: WebVid CSV header needs 'videoid' and 'name', got {sorted(cols)}")
        for i, row in enumerate(reader, 2):
            text = (row.get("name") or "").strip()
            if not row.get("videoid") or not text:
                stats.skip(f"{path}, row {i}: empty videoid or caption")
                continue
            fields = {k: (v or "") for k, v in row.items() if k is not None}
            try:
                video = _video(root, video_template, fields)
            except KeyError as err:
                raise AnnotationError(f"{path}: video_template {video_template!r} needs column {err}") from err
            stats.yielded += 1
            yield Sample(id=f"webvid_{row['videoid']}", video=video, texts=[text],
                         extra={"source": "webvid", "duration": row.get("duration"), "row": i})


def read_vila_jsonl(path: str | Path, video_root: str | Path | None = None, video_template: str = "{clip_id}",
                    source: str = "hdvila", stats: CorpusStats | None = None) -> Iterator[Sample]:
    """Pairs of an HD-VILA / LF-VILA-style JSON-lines file (flat or official nested records)."""
    path, stats = Path(path), stats if stats is not None else CorpusStats()
    root = Path(video_root) if video_root is not None else None
    with open(path, encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                stats.skip(f"{path}, line {line_no}: invalid JSON ({err.msg})")
                continue
            if not isinstance(rec, dict):
                stats.skip(f"{path}, line {line_no}: not an object")
                continue
            clips = rec["clip"] if isinstance(rec.get("clip"), list) else [rec]
            for j, clip in enumerate(clips):
                merged = {**{k: v for k, v in rec.items() if k != "clip"}, **(clip if isinstance(clip, dict) else {})}
                cid = next((str(merged[k]) for k in _ID_KEYS if merged.get(k)), None)
                text = next((str(merged[k]).strip() for k in _TEXT_KEYS if merged.get(k)), "")
                if isinstance(merged.get("text"), list):  # LF-VILA: several sentences per long clip
                    text = " ".join(str(t).strip() for t in merged["text"] if str(t).strip())
                where = f"{path}, line {line_no}" + (f" clip {j}" if len(clips) > 1 else "")
                if cid is None:
                    stats.skip(f"{where}: no clip id ({'/'.join(_ID_KEYS)})")
                    continue
                if not text:
                    stats.skip(f"{where}: no text ({'/'.join(_TEXT_KEYS)}); the official HD-VILA metadata "
                               "has no transcript")
                    continue
                span = None
                if merged.get("span") is not None:
                    try:
                        span = tuple(parse_timestamp(t) for t in merged["span"][:2])
                    except (ValueError, TypeError):
                        stats.skip(f"{where}: bad span {merged['span']!r}")
                        continue
                fields = {"clip_id": cid, "video_id": str(merged.get("video_id", cid)), **{
                    k: v for k, v in merged.items() if isinstance(v, (str, int, float))}}
                stats.yielded += 1
                yield Sample(id=f"{source}_{cid}", video=_video(root, video_template, fields), texts=[text],
                             extra={"source": source, **({"clip_span": span} if span else {}), "line": line_no})


def read_pairs(path: str | Path, fmt: str = "auto", **kwargs: Any) -> Iterator[Sample]:
    """Dispatch on ``fmt`` (``webvid`` | ``hdvila`` | ``lfvila`` | ``auto``: ``.csv`` -> webvid, else JSON lines)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"corpus file not found: {p} (WebVid: https://github.com/m-bain/webvid; HD-VILA: "
                                "https://github.com/microsoft/XPretrain/tree/main/hd-vila-100m; LF-VILA: "
                                "https://github.com/microsoft/XPretrain/tree/main/LF-VILA)")
    if fmt == "auto":
        fmt = "webvid" if p.suffix.lower() in (".csv", ".tsv") else "hdvila"
    if fmt == "webvid":
        return read_webvid_csv(p, **kwargs)
    if fmt in ("hdvila", "lfvila"):
        return read_vila_jsonl(p, source=kwargs.pop("source", fmt), **kwargs)
    raise ValueError(f"unknown corpus format {fmt!r} (webvid, hdvila, lfvila, auto)")


def sample_pairs(pairs: Iterable[Sample], n: int, seed: int = 0) -> list[Sample]:
    """N pairs drawn uniformly without replacement (reservoir sampling, Algorithm R), in source order.

    Fewer than N pairs available: all of them are returned.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    reservoir: list[tuple[int, Sample]] = []
    for i, s in enumerate(pairs):
        if i < n:
            reservoir.append((i, s))
        else:
            j = int(rng.integers(0, i + 1))
            if j < n:
                reservoir[j] = (i, s)
    return [s for _, s in sorted(reservoir, key=lambda t: t[0])]


def build_corpus(sources: list[dict[str, Any]], seed: int = 0) -> tuple[list[Sample], dict[str, CorpusStats]]:
    """Mix sources: each ``{"path", "n", "format"?, "video_root"?, "video_template"?}``; seed offset per source.

    Returns the pairs (source after source) and the reader statistics per path.
    """
    out: list[Sample] = []
    stats: dict[str, CorpusStats] = {}
    for k, src in enumerate(sources):
        st = CorpusStats()
        kw = {key: src[key] for key in ("video_root", "video_template") if key in src}
        pairs = read_pairs(src["path"], src.get("format", "auto"), stats=st, **kw)
        out.extend(sample_pairs(pairs, int(src["n"]), seed + k))
        stats[str(src["path"])] = st
    return out, stats

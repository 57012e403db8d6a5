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

* Plain CSV / JSON lines with ``id``, ``video`` (or ``video_path``) and ``caption``: the format a user writes for
  their own pairs. Empty captions are kept (``sg parse`` records them as failures); a missing field or a
  duplicate id is an :class:`AnnotationError` naming file, record and field.

Named, seeded mixtures (:data:`MIXTURES`): ``webvid25k_hdvila25k`` (sec 6.1: 25K WebVid-2.5M + 25K HD-VILA-100M
pairs), ``lfvila30k`` (30K LF-VILA-8M pairs for the long-video tasks), ``plain`` (every pair of one file).
:func:`resolve_corpus` turns a mixture name plus the user's files into a :class:`CorpusSpec` (plain data, the
corpus part of the run identity); :meth:`CorpusSpec.fingerprint` hashes the spec and the annotation files'
contents; :func:`load_corpus` reads it. A byte-order mark at the start of any file is ignored.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
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
        seen: set[str] = set()
        for i, row in enumerate(reader, 2):
            text = (row.get("name") or "").strip()
            if not row.get("videoid") or not text:
                stats.skip(f"{path}, row {i}: empty videoid or caption")
                continue
            if row["videoid"] in seen:
                stats.skip(f"{path}, row {i}: duplicate videoid {row['videoid']!r}")
                continue
            seen.add(row["videoid"])
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
    seen: set[str] = set()
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
                if cid in seen:
                    stats.skip(f"{where}: duplicate clip id {cid!r}")
                    continue
                seen.add(cid)
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


def read_plain(path: str | Path, video_root: str | Path | None = None, stats: CorpusStats | None = None,
               source: str = "plain") -> Iterator[Sample]:
    """Pairs of a plain ``id,video,caption`` CSV or JSON-lines file (``video_path`` accepted for ``video``).

    Relative video paths resolve against ``video_root`` (default: the file's directory). Ids are kept as
    written. Empty captions are kept (the scene-graph pipeline records them); a record without ``id`` /
    ``video`` / ``caption`` or a repeated id raises :class:`AnnotationError` naming file, record and field.
    """
    path, stats = Path(path), stats if stats is not None else CorpusStats()
    root = Path(video_root) if video_root is not None else path.resolve().parent
    seen: set[str] = set()
    for where, rec in _plain_records(path):
        missing = [k for k in ("id", "video", "caption") if rec.get(k) is None
                   and not (k == "video" and rec.get("video_path") is not None)]
        if missing:
            raise AnnotationError(f"{where}: field {missing[0]!r} is missing (a plain corpus needs id, video "
                                  f"(or video_path) and caption; got {sorted(rec)})")
        sid = str(rec["id"]).strip()
        vid = str(rec.get("video") if rec.get("video") is not None else rec["video_path"]).strip()
        for key, val in (("id", sid), ("video", vid)):
            if not val:
                raise AnnotationError(f"{where}: field {key!r} is empty")
        if sid in seen:
            raise AnnotationError(f"{where}: field 'id': duplicate id {sid!r}")
        seen.add(sid)
        stats.yielded += 1
        yield Sample(id=sid, video=vid if os.path.isabs(vid) else str(root / vid),
                     texts=[str(rec["caption"] or "").strip()], extra={"source": source, "record": where})


def _plain_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, record)`` of a plain CSV (``where`` = "file, row N") or JSON-lines file ("file, line N")."""
    if path.suffix.lower() in (".csv", ".tsv"):
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for i, row in enumerate(reader, 2):
                if None in row:
                    raise AnnotationError(f"{path}, row {i}: more fields than the header has columns")
                yield f"{path}, row {i}", {k.strip(): v for k, v in row.items() if k is not None}
        return
    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise AnnotationError(f"{path}, line {n}: not valid JSON ({err.msg})") from None
            if not isinstance(rec, dict):
                raise AnnotationError(f"{path}, line {n}: a record must be a JSON object, got {type(rec).__name__}")
            yield f"{path}, line {n}", rec


def sniff_format(path: str | Path) -> str:
    """``webvid`` | ``hdvila`` | ``plain`` from the CSV header or the first JSON record's keys."""
    p = Path(path)
    if p.suffix.lower() in (".csv", ".tsv"):
        with open(p, encoding="utf-8-sig", newline="") as fh:
            header = {h.strip() for h in next(csv.reader(fh, delimiter="\t" if p.suffix.lower() == ".tsv" else ","),
                                              [])}
        if {"videoid", "name"} <= header:
            return "webvid"
        if "id" in header and "caption" in header:
            return "plain"
        raise AnnotationError(f"{p}: CSV header {sorted(header)} is neither WebVid (videoid, name, page_dir, ...) "
                              "nor plain (id, video, caption)")
    with open(p, encoding="utf-8-sig") as fh:
        for line in fh:
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    return "hdvila"  # the VILA reader counts the bad line
                if isinstance(rec, dict) and "id" in rec and "caption" in rec and (
                        "video" in rec or "video_path" in rec):
                    return "plain"
                return "hdvila"
    return "hdvila"


def read_pairs(path: str | Path, fmt: str = "auto", **kwargs: Any) -> Iterator[Sample]:
    """Dispatch on ``fmt`` (``webvid`` | ``hdvila`` | ``lfvila`` | ``plain`` | ``auto``: sniffed from the file)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"corpus file not found: {p} (WebVid: https://github.com/m-bain/webvid; HD-VILA: "
                                "https://github.com/microsoft/XPretrain/tree/main/hd-vila-100m; LF-VILA: "
                                "https://github.com/microsoft/XPretrain/tree/main/LF-VILA)")
    if fmt == "auto":
        fmt = sniff_format(p)
    if fmt == "webvid":
        return read_webvid_csv(p, **kwargs)
    if fmt in ("hdvila", "lfvila"):
        return read_vila_jsonl(p, source=kwargs.pop("source", fmt), **kwargs)
    if fmt == "plain":
        kwargs.pop("video_template", None)
        return read_plain(p, **kwargs)
    raise ValueError(f"unknown corpus format {fmt!r} (webvid, hdvila, lfvila, plain, auto)")


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

    ``n`` = None takes every pair of the source (in file order). Returns the pairs (source after source) and
    the reader statistics per path.
    """
    out: list[Sample] = []
    stats: dict[str, CorpusStats] = {}
    for k, src in enumerate(sources):
        st = CorpusStats()
        kw = {key: src[key] for key in ("video_root", "video_template") if src.get(key) is not None}
        pairs = read_pairs(src["path"], src.get("format") or "auto", stats=st, **kw)
        out.extend(list(pairs) if src.get("n") is None else sample_pairs(pairs, int(src["n"]), seed + k))
        stats[str(src["path"])] = st
    return out, stats


# -- named mixtures, the corpus spec and its fingerprint ----------------------------------------------------


@dataclass(frozen=True)
class MixturePart:
    """One source of a named mixture: the key users give files under, its format and pairs drawn (None = all)."""

    key: str
    format: str
    n: int | None
    what: str


MIXTURES: dict[str, tuple[MixturePart, ...]] = {
    # sec 6.1: "we randomly sample 25K video-text pairs from WebVid-2.5M and 25K from HD-VILA-100M"
    "webvid25k_hdvila25k": (MixturePart("webvid", "webvid", 25_000, "WebVid-2.5M CSV (results_2M_train.csv)"),
                            MixturePart("hdvila", "hdvila", 25_000, "HD-VILA-100M JSON lines with clip texts")),
    # sec 6.1: long-video tasks (L-Vid) post-train on 30K LF-VILA-8M pairs
    "lfvila30k": (MixturePart("lfvila", "lfvila", 30_000, "LF-VILA-8M JSON lines"),),
    "webvid": (MixturePart("webvid", "webvid", None, "WebVid CSV"),),
    "hdvila": (MixturePart("hdvila", "hdvila", None, "HD-VILA JSON lines"),),
    "lfvila": (MixturePart("lfvila", "lfvila", None, "LF-VILA JSON lines"),),
    "plain": (MixturePart("plain", "plain", None, "plain id,video,caption CSV / JSON lines"),),
}


@dataclass(frozen=True)
class CorpusSource:
    """A resolved source: absolute annotation file, format, pairs drawn (None = all), video location."""

    key: str
    format: str
    path: str
    n: int | None = None
    video_root: str | None = None
    video_template: str | None = None


@dataclass(frozen=True)
class CorpusSpec:
    """A post-training corpus as plain data: mixture name, its sources and the sampling seed."""

    name: str
    sources: tuple[CorpusSource, ...]
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "sources": [asdict(s) for s in self.sources]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CorpusSpec:
        return cls(str(d["name"]), tuple(CorpusSource(**s) for s in d["sources"]), int(d.get("seed", 0)))

    def fingerprint(self) -> str:
        """16 hex digits over the spec and the content of every annotation file (videos are not hashed)."""
        h = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        for s in self.sources:
            h.update(file_digest(s.path).encode())
        return h.hexdigest()[:16]


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's content (about 1 s per GB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve_corpus(mixture: str, files: dict[str, str], video_roots: dict[str, str] | None = None,
                   n: dict[str, int | None] | None = None, seed: int = 0,
                   video_templates: dict[str, str] | None = None) -> CorpusSpec:
    """A named mixture plus the user's files -> :class:`CorpusSpec` (absolute paths; files must exist).

    Args:
        mixture: a key of :data:`MIXTURES`.
        files: source key -> annotation file (``{"webvid": ".../results_2M_train.csv", "hdvila": "..."}``).
        video_roots: source key -> video directory (default: the annotation file's directory).
        n: source key -> pairs to draw, overriding the mixture's counts (smoke runs); ``None`` = all.
        seed: sampling seed (source k uses ``seed + k``).

    Raises:
        ValueError: unknown mixture, a source without file or an unknown source key (one line).
        FileNotFoundError: an annotation file or video root that does not exist.
    """
    if mixture not in MIXTURES:
        raise ValueError(f"unknown corpus mixture {mixture!r} (mixtures: {', '.join(sorted(MIXTURES))})")
    parts = MIXTURES[mixture]
    keys = {p.key for p in parts}
    video_roots, n, video_templates = dict(video_roots or {}), dict(n or {}), dict(video_templates or {})
    for name, given in (("files", files), ("video_roots", video_roots), ("n", n), ("video_templates",
                                                                                   video_templates)):
        extra = sorted(set(given) - keys)
        if extra:
            raise ValueError(f"corpus mixture {mixture!r} has the sources {sorted(keys)}; {name} names {extra}")
    sources = []
    for part in parts:
        if not files.get(part.key):
            raise ValueError(f"corpus mixture {mixture!r} needs a file for source {part.key!r} ({part.what}): "
                             f"give files.{part.key}=PATH")
        path = Path(files[part.key]).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"corpus source {part.key!r} ({part.what}): file not found: {path}")
        root = Path(video_roots[part.key]).expanduser().resolve() if video_roots.get(part.key) else path.parent
        if not root.is_dir():
            raise FileNotFoundError(f"corpus source {part.key!r}: video root not found: {root}")
        count = n.get(part.key, part.n)
        if count is not None and int(count) <= 0:
            raise ValueError(f"corpus source {part.key!r}: n must be positive, got {count}")
        sources.append(CorpusSource(part.key, part.format, str(path), None if count is None else int(count),
                                    str(root), video_templates.get(part.key)))
    return CorpusSpec(mixture, tuple(sources), int(seed))


def load_corpus(spec: CorpusSpec) -> tuple[list[Sample], dict[str, CorpusStats]]:
    """The pairs of ``spec`` (seeded; the same spec gives the same pairs) and the reader statistics per file.

    Raises:
        AnnotationError: two sources yield the same sample id (ids must be unique in a corpus).
    """
    pairs, stats = build_corpus([{"path": s.path, "n": s.n, "format": s.format, "video_root": s.video_root,
                                  "video_template": s.video_template} for s in spec.sources], spec.seed)
    seen: dict[str, str] = {}
    for p in pairs:
        src = str(p.extra.get("source", ""))
        if p.id in seen:
            raise AnnotationError(f"corpus {spec.name!r}: sample id {p.id!r} occurs in source {seen[p.id]!r} and in "
                                  f"source {src!r}; ids must be unique across a corpus")
        seen[p.id] = src
    return pairs, stats

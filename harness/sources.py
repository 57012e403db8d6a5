"""Post-training sources (contract C3): which video-text pairs a posttrain run trains on, and their scene graphs.

A posttrain run reads a *corpus* and the *graph store* that ``python -m harness sg parse`` built from it:

* corpus kind ``corpus``: ``posttrain.corpus = {mixture, files, video_roots, n, seed, video_templates}`` (or
  ``{file, format}`` for one file), resolved by :func:`tasks.corpora.resolve_corpus` (paper sec 6.1 mixtures
  ``webvid25k_hdvila25k`` and ``lfvila30k``, or a plain ``id,video,caption`` file);
* corpus kind ``task``: ``posttrain.corpus = {}`` takes split ``posttrain.split`` of ``posttrain.data`` (or of
  the run's task).

The store is ``posttrain.sg_store`` or, by default, ``<store.root>/../sg/<corpus name>-<fingerprint[:10]>``.
:func:`resolve_posttrain_sources` checks it at planning time and raises a :class:`~harness.errors.PlanError`
ending with the exact ``python -m harness sg parse ...`` command when it is missing, partial or stale (built
from another corpus). ``harness sg parse`` builds its corpus through the same :class:`CorpusRef`, so the
command printed here reproduces the fingerprint the planner expects.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finsta_core.sg.store import digest, store_state
from harness.errors import PlanError
from tasks.base import Task
from tasks.corpora import (
    MIXTURES,
    CorpusSpec,
    CorpusStats,
    file_digest,
    load_corpus,
    resolve_corpus,
    sniff_format,
)

__all__ = ["CorpusRef", "PosttrainSources", "corpus_ref_from_config", "corpus_ref_from_file",
           "corpus_ref_from_mixture", "corpus_ref_from_task", "default_store_root", "materialize",
           "resolve_posttrain_sources", "sg_parse_command"]

_SINGLE = {"plain": "plain", "webvid": "webvid", "hdvila": "hdvila", "lfvila": "lfvila"}  # format -> mixture
_CORPUS_KEYS = ("mixture", "file", "format", "files", "video_roots", "video_templates", "n", "seed")


@dataclass(frozen=True)
class CorpusRef:
    """A corpus as plain data: ``kind`` (``corpus`` | ``task``), a name, its spec and fingerprint.

    ``spec`` is ``CorpusSpec.to_dict()`` (kind ``corpus``) or ``{"task", "split", "root", "options", "limit"}``.
    """

    kind: str
    name: str
    spec: dict[str, Any]
    fingerprint: str

    def cli_args(self) -> list[str]:
        """The ``sg parse`` arguments that rebuild exactly this corpus."""
        if self.kind == "task":
            s = self.spec
            args = ["--task", s["task"], "--split", s["split"]]
            if s.get("root"):
                args += ["--root", str(s["root"])]
            for k, v in sorted((s.get("options") or {}).items()):
                args += ["--task-option", f"{k}={json.dumps(v)}"]
            if s.get("limit") is not None:
                args += ["--limit", str(s["limit"])]
            return args
        spec = CorpusSpec.from_dict(self.spec)
        args = ["--mixture", spec.name]
        defaults = {p.key: p.n for p in MIXTURES[spec.name]}
        for src in spec.sources:
            args += ["--corpus-file", f"{src.key}={src.path}"]
            if src.video_root and Path(src.video_root) != Path(src.path).parent:
                args += ["--video-root", f"{src.key}={src.video_root}"]
            if src.n != defaults.get(src.key):
                args += ["--corpus-n", f"{src.key}={src.n}"]
            if src.video_template:
                args += ["--video-template", f"{src.key}={src.video_template}"]
        if spec.seed:
            args += ["--corpus-seed", str(spec.seed)]
        return args


@dataclass(frozen=True)
class PosttrainSources:
    """What a posttrain run reads (contract C3): serialisable, goes into the run spec and identity."""

    kind: str
    corpus: dict[str, Any]
    corpus_fingerprint: str
    sg_store: str
    sg_fingerprint: str
    n_pairs: int
    n_failed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PosttrainSources:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def identity(self) -> dict[str, str]:
        """The part of the run identity: fingerprints only (moving the files does not change results)."""
        return {"corpus": self.corpus_fingerprint, "scene_graphs": self.sg_fingerprint}


def corpus_ref_from_mixture(mixture: str, files: dict[str, str], video_roots: dict[str, str] | None = None,
                            n: dict[str, int | None] | None = None, seed: int = 0,
                            video_templates: dict[str, str] | None = None) -> CorpusRef:
    """A named mixture of :data:`tasks.corpora.MIXTURES` with the user's files (``ValueError`` /
    ``FileNotFoundError`` with one-line messages)."""
    spec = resolve_corpus(mixture, files, video_roots, n, seed, video_templates)
    return CorpusRef("corpus", spec.name, spec.to_dict(), spec.fingerprint())


def corpus_ref_from_file(path: str, fmt: str = "auto", video_root: str | None = None, n: int | None = None,
                         seed: int = 0, video_template: str | None = None) -> CorpusRef:
    """One annotation file as a corpus (format sniffed unless given; every pair unless ``n``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    fmt = sniff_format(path) if fmt == "auto" else fmt
    if fmt not in _SINGLE:
        raise ValueError(f"unknown corpus format {fmt!r} (plain, webvid, hdvila, lfvila, auto)")
    key = _SINGLE[fmt]
    return corpus_ref_from_mixture(key, {key: path}, {key: video_root} if video_root else None,
                                   {key: n} if n is not None else None, seed,
                                   {key: video_template} if video_template else None)


def corpus_ref_from_task(task: Task, split: str, limit: int | None = None) -> CorpusRef:
    """Split ``split`` of ``task`` (its first ``limit`` samples) as a corpus.

    The fingerprint covers the task's identity (name, version, protocol, options), the split and the content of
    every annotation file the split reads (``Task.input_files``), so an edited annotation file makes a store stale.
    """
    spec = {"task": task.name, "split": split, "root": str(task.root) if task.root is not None else None,
            "options": dict(task.options), "limit": limit}
    # content only, keyed by file name: the same data under another root spelling is the same corpus
    files = sorted((Path(f).name, file_digest(f)) for f in task.input_files(split) if Path(f).is_file())
    fp = digest({"task": task.name, "task_fingerprint": task.fingerprint(), "split": split, "files": files})
    return CorpusRef("task", task.name, spec, fp)


def corpus_ref_from_config(cfg: dict[str, Any], data_task: Task | None = None) -> CorpusRef:
    """The corpus of a resolved posttrain config (see the module docstring). Raises :class:`PlanError`."""
    pt = cfg["posttrain"]
    corpus = dict(pt.get("corpus") or {})
    try:
        if not corpus:
            if data_task is None:
                raise PlanError("posttrain.corpus is empty and no post-training data task was given")
            limit = cfg.get("data", {}).get("limit")
            return corpus_ref_from_task(data_task, str(pt["split"]), int(limit) if limit is not None else None)
        unknown = sorted(set(corpus) - set(_CORPUS_KEYS))
        if unknown:
            raise PlanError(f"unknown key(s) posttrain.corpus.{unknown[0]} (keys: {', '.join(_CORPUS_KEYS)})")
        if corpus.get("file"):
            return corpus_ref_from_file(str(corpus["file"]), str(corpus.get("format") or "auto"),
                                        _one(corpus.get("video_roots")), _one(corpus.get("n")),
                                        int(corpus.get("seed") or 0), _one(corpus.get("video_templates")))
        if not corpus.get("mixture"):
            raise PlanError("posttrain.corpus needs 'mixture' (one of " + ", ".join(sorted(MIXTURES))
                            + ") with 'files', or 'file'")
        return corpus_ref_from_mixture(str(corpus["mixture"]), _str_map(corpus.get("files")),
                                       _str_map(corpus.get("video_roots")),
                                       {k: (None if v is None else int(v)) for k, v in (corpus.get("n") or {}).items()},
                                       int(corpus.get("seed") or 0), _str_map(corpus.get("video_templates")))
    except (ValueError, FileNotFoundError, TypeError) as err:  # PlanError is none of these: it passes through
        raise PlanError(f"post-training corpus: {str(err).splitlines()[0]}") from None


def _str_map(x: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (x or {}).items() if v is not None}


def _one(x: Any) -> Any:
    """A single-file corpus takes a scalar, or a one-entry map ``{key: value}``."""
    if isinstance(x, dict):
        return next(iter(x.values()), None)
    return x


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:40]


def default_store_root(cfg: dict[str, Any], ref: CorpusRef) -> Path:
    """``<store.root>/../sg/<corpus name>-<fingerprint[:10]>`` (absolute)."""
    root = Path(str(cfg["store"]["root"])).expanduser().resolve()
    name = ref.name if ref.kind == "corpus" else f"{ref.name}-{ref.spec['split']}"
    return root.parent / "sg" / f"{_slug(name)}-{ref.fingerprint[:10]}"


def materialize(ref: CorpusRef) -> tuple[list[dict[str, Any]], dict[str, CorpusStats]]:
    """The records of ``ref`` (``{"id", "video", "caption", ...}``) and the reader statistics per file."""
    if ref.kind == "task":
        from tasks.registry import create_task

        s = ref.spec
        task = create_task(s["task"], root=s.get("root"), **dict(s.get("options") or {}))
        samples = task.samples(s["split"], limit=s.get("limit"))
        recs = [{"id": x.id, "video": x.video or "", "caption": (x.texts or [""])[0],
                 **({"clip_span": list(x.extra["clip_span"])} if x.extra.get("clip_span") else {})} for x in samples]
        return recs, {}
    pairs, stats = load_corpus(CorpusSpec.from_dict(ref.spec))
    recs = []
    for p in pairs:
        r = {"id": p.id, "video": p.video or "", "caption": p.texts[0] if p.texts else "",
             "source": p.extra.get("source", "")}
        if p.extra.get("clip_span"):
            r["clip_span"] = list(p.extra["clip_span"])
        recs.append(r)
    return recs, stats


def sg_parse_command(ref: CorpusRef, out: str | Path, pipeline_args: list[str] | None = None,
                     rebuild: bool = False) -> str:
    """The exact ``python -m harness sg parse`` command for ``ref`` into ``out``.

    ``pipeline_args`` are the detector / parser flags (from the store's manifest when it has one); without
    them the command shows the two a user must supply as ``<CLASSES.txt>`` / ``<DETECTOR.pth>``.
    """
    pipe = list(pipeline_args) if pipeline_args is not None else [
        "--classes", "<CLASSES.txt>", "--detector-checkpoint", "<DETECTOR.pth>"]
    argv = ["python", "-m", "harness", "sg", "parse", *ref.cli_args(), "--out", str(out), *pipe]
    return shlex.join(argv + (["--rebuild"] if rebuild else [])).replace("'<", "<").replace(">'", ">")


def resolve_posttrain_sources(cfg: dict[str, Any], data_task: Task | None = None) -> PosttrainSources:
    """Resolve corpus and graph store of a posttrain config (contract C3).

    Args:
        cfg: the resolved run config (plain dict).
        data_task: the post-training data task (used when ``posttrain.corpus`` is empty).

    Raises:
        PlanError: bad corpus settings; or the store is missing, partial, stale or holds no graph. The message
            ends with the exact ``python -m harness sg parse ...`` command to run.
    """
    ref = corpus_ref_from_config(cfg, data_task)
    store = Path(str(cfg["posttrain"].get("sg_store") or default_store_root(cfg, ref))).expanduser().resolve()
    what = f"post-training corpus {ref.name!r} (fingerprint {ref.fingerprint})"
    try:
        st = store_state(store)
    except ValueError as err:
        raise PlanError(f"{what}: {err}") from None
    args = (st.manifest or {}).get("pipeline_args")
    if st.state == "missing":
        raise PlanError(f"{what} has no scene graphs ({st.detail}); build them with: "
                        f"{sg_parse_command(ref, store, args)}")
    built = (st.manifest or {}).get("corpus_fingerprint")
    if built is not None and built != ref.fingerprint:
        raise PlanError(f"scene-graph store {store} is stale: it was built from corpus fingerprint {built}, the run's "
                        f"{what} differs (annotation files, sampling or task data changed); rebuild it with: "
                        f"{sg_parse_command(ref, store, args, rebuild=True)}")
    if st.state == "partial":
        raise PlanError(f"scene-graph store for {what} is partial ({st.detail}); finish it with: "
                        f"{sg_parse_command(ref, store, args)}")
    assert st.index is not None and st.manifest is not None
    if ref.kind == "task":
        have, want = st.manifest["corpus"]["spec"].get("limit"), ref.spec.get("limit")
        if have is not None and (want is None or want > have):
            raise PlanError(f"scene-graph store {store} covers the first {have} samples of {ref.name!r} "
                            f"{ref.spec['split']!r}, the run uses {want or 'all'}; rebuild it with: "
                            f"{sg_parse_command(ref, store, args, rebuild=True)}")
    if st.index["n_ok"] == 0:
        reasons = sorted({f["reason"].split(":")[0] for f in st.index.get("failures", [])})
        raise PlanError(f"scene-graph store {store} holds no graph: all {st.index['n_failed']} records failed "
                        f"({'; '.join(reasons[:3])}); fix the corpus and rebuild with: "
                        f"{sg_parse_command(ref, store, args, rebuild=True)}")
    return PosttrainSources(ref.kind, {"kind": ref.kind, "name": ref.name, "spec": ref.spec}, ref.fingerprint,
                            str(store), st.fingerprint, int(st.index["n_ok"]), int(st.index["n_failed"]))


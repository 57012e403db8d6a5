"""Shared machinery of the official-dataset loaders: data roots, file overrides, robust readers, strict/lenient.

Data root of a task (first that applies): the ``root`` argument of ``create_task``; env var
``FINSTA_DATA_<DATASET>`` (e.g. ``FINSTA_DATA_MSRVTT``); ``$FINSTA_DATA_ROOT/<dataset>``; ``./data/<dataset>``.
Inside it the official file names are expected (``files`` of the task YAML); any file can be overridden with
the task option ``files={"<key>": "/abs/or/root-relative/path"}``. Videos are found with the YAML's
``video_template`` (overridable, option ``video_template``; relative to option ``video_root``, default the data
root); when the formatted file is missing, the same stem with the extensions of ``video_exts`` is tried.

Strict mode (default) raises :class:`AnnotationError` on the first malformed record, naming file, record and
problem. Lenient mode (``strict=False``) skips such records and counts them in the split's :class:`SplitReport`.
"""

from __future__ import annotations

import builtins
import collections
import csv
import hashlib
import io
import json
import os
import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tasks.base import RequiredFile, Sample, SplitReport, Task
from tasks.datasets.spans import SpanError, check_span

DATA_ROOT_ENV = "FINSTA_DATA_ROOT"
_VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".gif")


class AnnotationError(ValueError):
    """A malformed annotation record or file (message: file, record, what is wrong)."""


class MissingDataError(FileNotFoundError):
    """An annotation file the split needs is absent (message: what, path, where to get it)."""


class Problems:
    """Collects record problems: raises at once in strict mode, counts and keeps the first 50 otherwise."""

    def __init__(self, strict: bool, report: SplitReport) -> None:
        self.strict, self.report = strict, report

    def bad(self, path: Path | str, record: str, what: str) -> None:
        msg = f"{path}, {record}: {what}"
        if self.strict:
            raise AnnotationError(msg + " (strict mode; skip and count bad records with task.strict=false in "
                                        "run / validate, or --lenient in data check)")
        self.report.n_skipped += 1
        if len(self.report.problems) < 50:
            self.report.problems.append(msg)

    def note(self, msg: str) -> None:
        if len(self.report.problems) < 50:
            self.report.problems.append(msg)

    def span(self, path: Path | str, record: str, field: str, start: Any, end: Any, *, allow_empty: bool = False,
             duration: Any = None) -> tuple[float, float] | None:
        """The checked span (:func:`tasks.datasets.spans.check_span`), or None after reporting the record
        as bad (``<file>, <record>: field '<field>': <reason>``)."""
        try:
            return check_span(start, end, allow_empty=allow_empty, duration=duration)
        except SpanError as err:
            self.bad(path, record, f"field {field!r}: {err}")
            return None


# ------------------------------------------------------------------------------------------------ readers
def read_text(path: Path) -> str:
    """UTF-8 text with universal newlines (CRLF files) and a UTF-8 BOM removed."""
    try:
        with open(path, encoding="utf-8-sig", newline=None) as fh:
            return fh.read()
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err})") from err


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty stripped lines with their 1-based line numbers (split lists; files without final newline)."""
    return [(i, ln.strip()) for i, ln in enumerate(read_text(path).split("\n"), 1) if ln.strip()]


def read_tsv(path: Path) -> list[tuple[int, list[str]]]:
    """TAB-separated rows with quoting disabled (LSMDC has unbalanced ``"``); ``(line_no, fields)``."""
    return [(i, ln.rstrip("\n").split("\t")) for i, ln in enumerate(read_text(path).split("\n"), 1) if ln.strip()]


def read_csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Comma CSV rows with standard double-quote quoting, no header assumed; ``(row_no, fields)``."""
    rows = csv.reader(io.StringIO(read_text(path)))
    try:
        return [(i, r) for i, r in enumerate(rows, 1) if r and any(x.strip() for x in r)]
    except csv.Error as err:
        raise AnnotationError(f"{path}: CSV parse error: {err}") from err


class _DuplicateKey(ValueError):
    def __init__(self, key: str, keys: list[str]) -> None:
        super().__init__(key)
        self.key, self.keys = key, keys


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a JSON object whose keys repeat is refused (``json`` keeps the last silently)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k, [key for key, _ in pairs])
        out[k] = v
    return out


def _duplicate_message(err: _DuplicateKey) -> str:
    keys = err.keys if len(err.keys) <= 6 else [*err.keys[:6], "..."]
    return f"duplicate key {err.key!r} in a JSON object (keys {keys}); json would keep only the last value"


def parse_json(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys (raises ``_DuplicateKey``, a ValueError)."""
    return json.loads(text, object_pairs_hook=_unique_object)


def read_json(path: Path) -> Any:
    """A JSON file; invalid JSON and duplicate keys in an object raise :class:`AnnotationError` naming the file."""
    try:
        return parse_json(read_text(path))
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from err
    except _DuplicateKey as err:
        raise AnnotationError(f"{path}: {_duplicate_message(err)}") from None


def read_jsonl(path: Path, problems: Problems) -> Iterator[tuple[int, Any]]:
    """``(line_no, record)`` of a JSON-lines file; unparsable lines go to ``problems``."""
    for i, ln in enumerate(read_text(path).split("\n"), 1):
        if not ln.strip():
            continue
        try:
            rec = parse_json(ln)
        except json.JSONDecodeError as err:
            problems.bad(path, f"line {i}", f"invalid JSON ({err.msg})")
            continue
        except _DuplicateKey as err:
            problems.bad(path, f"line {i}", _duplicate_message(err))
            continue
        yield i, rec


class _SafeUnpickler(pickle.Unpickler):
    """Only plain containers and scalars: caption pickles (``raw-captions.pkl``) need nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in {"dict", "list", "tuple", "set", "str", "int", "float"}:
            return getattr(builtins, name)
        if module == "collections" and name in {"OrderedDict", "defaultdict"}:
            return getattr(collections, name)
        raise AnnotationError(f"refusing to unpickle {module}.{name}: caption pickles hold only dicts/lists/strings")


def read_pickle(path: Path) -> Any:
    with open(path, "rb") as fh:
        try:
            return _SafeUnpickler(fh).load()
        except AnnotationError as err:
            raise AnnotationError(f"{path}: {err}") from err
        except Exception as err:
            raise AnnotationError(f"{path}: cannot unpickle: {err}") from err


def caption_text(c: Any) -> str:
    """A caption stored as a string or as a list of tokens (CE / CLIP4Clip pickles) -> one string."""
    return " ".join(str(t) for t in c).strip() if isinstance(c, (list, tuple)) else str(c).strip()


# ------------------------------------------------------------------------------------------------ task base
class OfficialTask(Task):
    """Base of the registered official tasks; class attributes come from ``tasks/configs/<name>.yaml``.

    Subclasses implement :meth:`read_split` (annotation parsing) and set ``split_files``:
    ``{split: [file keys]}``. ``files``: ``{key: official file name}``; ``sources``: ``{key: (what, where)}``.
    """

    files: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    split_files: dict[str, list[str]] = {}
    optional_files: tuple[str, ...] = ()
    video_template: str = "videos/{video_id}.mp4"
    video_exts: tuple[str, ...] = _VIDEO_EXTS
    eval_options: dict[str, Any] = {}
    known_options: tuple[str, ...] = ()
    _common_options = ("files", "video_root", "video_template", "protocol", "on_failed", "tie_rule", "v2t",
                       "recall_at", "caption_metrics", "ptb_tokenize", "drop_articles")
    _location_options = ("files", "video_root", "video_template")  # where data lives: not part of the identity

    def __init__(self, root: str | Path | None = None, strict: bool = True, **options: Any) -> None:
        unknown = set(options) - set(self._common_options) - set(self.known_options)
        if unknown:
            allowed = ", ".join(sorted(set(self._common_options) | set(self.known_options)))
            raise ValueError(f"task {self.name!r} has no option(s) {sorted(unknown)} (options: {allowed})")
        super().__init__(root=root, strict=strict, **options)
        if options.get("protocol"):
            p = options["protocol"]
            if not isinstance(p, dict):
                raise ValueError(f"task {self.name!r}: option 'protocol' must be a mapping of VideoProtocol fields")
            try:
                self.protocol = replace(self.protocol, **p)
            except TypeError as err:
                raise ValueError(f"task {self.name!r}: option 'protocol': {err}") from None
        self._check_location_options()
        self.check_options()
        self.reports: dict[str, SplitReport] = {}
        self._cache: dict[str, list[Sample]] = {}

    def _check_location_options(self) -> None:
        files = self.options.get("files")
        if files is not None:
            if not isinstance(files, dict):
                raise ValueError(f"task {self.name!r}: option 'files' must be a mapping file key -> path, "
                                 f"got {files!r}")
            unknown = sorted(set(map(str, files)) - set(self.files))
            if unknown:
                raise ValueError(f"task {self.name!r}: option 'files' has unknown key(s) {unknown} "
                                 f"(keys: {', '.join(sorted(self.files))})")
            bad = {k: v for k, v in files.items() if not isinstance(v, (str, os.PathLike))}
            if bad:
                raise ValueError(f"task {self.name!r}: option 'files' values must be paths, got {bad}")
        for key in ("video_root", "video_template"):
            v = self.options.get(key)
            if v is not None and not isinstance(v, (str, os.PathLike)):
                raise ValueError(f"task {self.name!r}: option {key!r} must be a string, got {v!r}")

    def check_options(self) -> None:
        """Loader-specific option checks (choices, types), run at construction so a bad option is reported
        before any file is read. Raise ``ValueError`` naming the task and the option."""

    def bool_option(self, key: str, default: bool = False) -> bool:
        """A true/false option, refused with a clear error when it is anything else."""
        v = self.options.get(key, default)
        if not isinstance(v, bool):
            raise ValueError(f"task {self.name!r}: option {key!r} must be true or false, got {v!r}")
        return v

    def int_option(self, key: str, default: int) -> int:
        """An integer option (``option_seed``), refused with a clear error when it is not one."""
        v = self.options.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"task {self.name!r}: option {key!r} must be an integer, got {v!r}")
        return v

    # -- paths -----------------------------------------------------------------------------------
    @property
    def data_root(self) -> Path:
        if self.root is not None:
            return self.root.expanduser()
        env = os.environ.get(f"FINSTA_DATA_{self.dataset.upper()}")
        if env:
            return Path(env).expanduser()
        base = os.environ.get(DATA_ROOT_ENV)
        return (Path(base).expanduser() if base else Path("data")) / self.dataset

    def path(self, key: str) -> Path:
        """Path of annotation file ``key`` (option ``files`` overrides; relative paths are under the root)."""
        override = dict(self.options.get("files") or {}).get(key)
        name = override if override is not None else self.files[key]
        p = Path(name).expanduser()
        return p if p.is_absolute() else self.data_root / p

    def has(self, key: str) -> bool:
        return key in self.files and self.path(key).is_file()

    def required_files(self, split: str) -> list[RequiredFile]:
        out = []
        for key in self.split_files.get(split, []):
            if key in self.optional_files:
                continue
            what, where = (list(self.sources.get(key, [])) + ["", ""])[:2]
            what = f"{self.dataset} {what or key} ({self.files[key]}, split {split})"
            out.append(RequiredFile(self.path(key), what, where or "the dataset's official release"))
        return out

    def input_files(self, split: str) -> list[Path]:
        """Required files plus the split's optional files that exist (e.g. YouCook2's split lists)."""
        paths = [f.path for f in self.required_files(split)]
        extra = [k for k in self.split_files.get(split, []) if k in self.optional_files] + self.read_if_present(split)
        for key in extra:
            if key in self.files and self.path(key).is_file() and self.path(key) not in paths:
                paths.append(self.path(key))
        return paths

    def read_if_present(self, split: str) -> list[str]:
        """File keys that loading ``split`` reads when they exist, beyond ``required_files`` and the optional
        ``split_files`` (loaders override; e.g. a clip-id mapping)."""
        return []

    def video_path(self, **fields: Any) -> str:
        """Local video path from the template; tries ``video_exts`` when the formatted file is absent."""
        template = self.options.get("video_template") or self.video_template
        vroot = Path(self.options.get("video_root") or self.data_root).expanduser()
        try:
            p = vroot / template.format(**fields)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"task {self.name!r}: video_template {template!r} cannot be filled from "
                             f"{sorted(fields)}: {err}") from err
        if p.exists() or not p.parent.is_dir():
            return str(p)
        stem = p.name[:-len(p.suffix)] if p.suffix else p.name.rstrip(".")
        for ext in self.video_exts:
            cand = p.with_name(stem + ext)
            if cand.exists():
                return str(cand)
        return str(p)

    # -- loading ---------------------------------------------------------------------------------
    def load_split(self, split: str) -> list[Sample]:
        if split in self._cache:
            return self._cache[split]
        missing = self.missing_files(split)
        if missing:
            raise MissingDataError(f"task {self.name!r}: {missing[0].message()}")
        report = SplitReport(split)
        problems = Problems(self.strict, report)
        samples = self._unique(split, self.read_split(split, problems), problems)
        report.n_samples = len(samples)
        report.n_videos = len({s.video for s in samples if s.video})
        report.n_texts = sum(len(s.texts) for s in samples)
        if report.n_classes is None:
            report.n_classes = self.count_classes(samples)
        self.count_split(samples, report)
        self.reports[split] = report
        self._cache[split] = samples
        return samples

    def _unique(self, split: str, samples: list[Sample], problems: Problems) -> list[Sample]:
        """Samples with a repeated id are refused (strict) or skipped and counted: ids name one question /
        caption / clip, and the run store and the evaluators key predictions by them."""
        first: dict[str, Sample] = {}
        out = []
        for s in samples:
            if s.id in first:
                files = ", ".join(str(p) for p in self.annotation_files(split))
                problems.bad(files or f"split {split}", f"sample id {s.id!r}",
                             f"duplicate sample id (records {_record_ref(first[s.id])} and {_record_ref(s)}); "
                             "ids must be unique per question / caption / clip")
                continue
            first[s.id] = s
            out.append(s)
        return out

    def annotation_files(self, split: str) -> list[Path]:
        """The files holding the split's records (its required files except vocabularies and mappings)."""
        aux = {self.path(k) for k in ("answers", "classes", "mapping") if k in self.files}
        return [f.path for f in self.required_files(split) if f.path not in aux]

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        raise NotImplementedError(f"task {self.name!r} does not implement read_split")

    def count_split(self, samples: list[Sample], report: SplitReport) -> None:
        """Dataset-specific counts for ``report.counts`` (e.g. answers outside the vocabulary)."""

    def count_classes(self, samples: list[Sample]) -> int | None:
        return None

    def report(self, split: str) -> SplitReport:
        """Counts and problems of ``split`` (loads it if needed)."""
        self.load_split(split)
        return self.reports[split]

    def identity(self) -> dict[str, Any]:
        """As :meth:`Task.identity`, without the options that only say where the files are."""
        ident = super().identity()
        ident["options"] = {k: v for k, v in ident["options"].items() if k not in self._location_options}
        return ident

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "eval_split": self.eval_split}


def _record_ref(s: Sample) -> str:
    """Where a sample came from, for messages (``line 12`` / ``row 3`` / ``record 5``), else its video."""
    for key in ("line", "row", "record"):
        if key in s.extra:
            return f"{key} {s.extra[key]}"
    return f"video {s.video}" if s.video else "?"


def shuffled_options(correct: str, wrong: list[str], key: str, seed: int = 0) -> tuple[list[str], int]:
    """Deterministic permutation of ``[correct] + wrong`` (for files that store the answer in a fixed column).

    The permutation depends only on ``(seed, key)`` through SHA-256, so it is identical across runs, machines
    and Python hash seeds. Returns ``(options, answer_index)``.
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    opts = [correct, *wrong]
    perm = rng.permutation(len(opts))
    return [opts[j] for j in perm], int(np.flatnonzero(perm == 0)[0])


class AnswerVocabTask(OfficialTask):
    """Open-ended QA tasks whose answers are classes of a vocabulary file (file key ``answers``).

    Subclasses implement ``_vocab() -> {answer: label index}``."""

    def _vocab(self) -> dict[str, int]:
        raise NotImplementedError

    def count_classes(self, samples: list[Sample]) -> int | None:
        return len(self._vocab()) or None

    def count_split(self, samples: list[Sample], report: SplitReport) -> None:
        """Reference answers outside the vocabulary: counted (they stay in the accuracy's denominator and
        cannot be a classifier's target), reported as ``counts["answers_outside_vocab"]``."""
        if any(s.extra.get("in_vocab") is not None for s in samples):
            report.counts["answers_outside_vocab"] = sum(1 for s in samples if s.extra.get("in_vocab") is False)

    @property
    def answer_vocab(self) -> list[str] | None:
        """Answers in label-index order (None while the vocabulary file is absent)."""
        if not self.has("answers"):
            return None
        v = self._vocab()
        return [a for a, _ in sorted(v.items(), key=lambda kv: kv[1])]

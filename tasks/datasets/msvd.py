"""MSVD captioning and MSVD-QA (``FORMATS.md`` s.5).

Clip ids ``<youtube_id>_<start>_<end>`` (may start with ``-``); splits from the collaborative-experts lists
(1,200 / 100 / 670). Captions, first available of (option ``captions`` picks one):

* ``raw-captions.pkl`` (CLIP4Clip / CE): dict clip id -> list of token lists (read with a restricted unpickler);
* ``AllVideoDescriptions.txt`` (original text release): ``<clip_id> <caption>`` per line, ``#`` comments;
* ``MSVD_test.tsv`` (DemoVLP, derived, test split only): no header, ``captions joined by ", "`` TAB ``clip_id``.

MSVD-QA: ``msvd_<split>_qa_encode.json`` (or the original ``<split>_qa.json``): JSON list of ``{answer, id,
question, video_id}`` where ``video_id`` is the k of ``vid<k>`` in ``youtube_mapping.txt``; answer vocabulary
``msvd_answer_set.txt`` (1,000 answers, one per line). The question word (what/who/how/when/where) is kept as
``answer_type`` for a per-type breakdown.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tasks.base import RequiredFile, Sample
from tasks.datasets.common import (
    AnnotationError,
    AnswerVocabTask,
    OfficialTask,
    Problems,
    caption_text,
    read_json,
    read_lines,
    read_pickle,
    read_tsv,
)

_CAPTION_KEYS = ("raw_captions", "descriptions", "test_tsv")


class _Msvd(OfficialTask):
    def _video(self, clip: str) -> str:
        return self.video_path(video_id=clip)


class MsvdCaptioning(_Msvd):
    known_options = ("captions",)

    def check_options(self) -> None:
        self._caption_key("test")

    def read_if_present(self, split: str) -> list[str]:
        return ["test_list"] if self._caption_key(split) == "test_tsv" else []

    def _caption_key(self, split: str) -> str:
        forced = self.options.get("captions")
        if forced is not None:
            if forced not in _CAPTION_KEYS:
                raise ValueError(f"task {self.name!r}: captions must be one of {_CAPTION_KEYS}, got {forced!r}")
            return forced
        for k in _CAPTION_KEYS:
            if self.has(k) and (k != "test_tsv" or split == "test"):
                return k
        return "raw_captions"

    def required_files(self, split: str) -> list[RequiredFile]:
        key = self._caption_key(split)
        req = [] if key == "test_tsv" else super().required_files(split)
        what, where = self.sources[key]
        return req + [RequiredFile(self.path(key), f"{self.dataset} {what} ({self.files[key]})", where)]

    def _captions(self, key: str, problems: Problems) -> dict[str, list[str]]:
        path = self.path(key)
        caps: dict[str, list[str]] = defaultdict(list)
        if key == "raw_captions":
            d = read_pickle(path)
            if not isinstance(d, dict):
                raise AnnotationError(f"{path}: expected a dict clip id -> list of captions")
            for clip, cs in d.items():
                caps[str(clip)] = [caption_text(c) for c in cs if caption_text(c)]
        elif key == "descriptions":
            for line, text in read_lines(path):
                if text.startswith("#"):
                    continue
                clip, _, cap = text.partition(" ")
                if not cap.strip():
                    problems.bad(path, f"line {line}", "no caption after the clip id")
                    continue
                caps[clip].append(cap.strip())
        else:
            for line, fields in read_tsv(path):
                if len(fields) != 2:
                    problems.bad(path, f"line {line}", f"{len(fields)} TAB fields, expected 2 (captions, clip id)")
                    continue
                caps[fields[1].strip()] = [c.strip() for c in fields[0].split(", ") if c.strip()]
        return caps

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        key = self._caption_key(split)
        caps = self._captions(key, problems)
        if key == "test_tsv":  # the DemoVLP file *is* the test split (670 rows); the CE list is cross-checked
            clips = list(caps)
            if self.has("test_list"):
                lost = [c for _, c in read_lines(self.path("test_list")) if c not in caps]
                if lost:
                    problems.note(f"{len(lost)} clip(s) of {self.files['test_list']} have no row in "
                                  f"{self.files['test_tsv']} (e.g. {lost[0]})")
        else:
            clips = [c for _, c in read_lines(self.path(f"{split}_list"))]
        out = []
        for clip in dict.fromkeys(clips):
            if not caps.get(clip):
                problems.bad(self.path(key), f"clip {clip}", f"no caption for a clip of the {split} list")
                continue
            out.append(Sample(id=clip, video=self._video(clip), texts=caps[clip], references=caps[clip]))
        return out


class MsvdQA(_Msvd, AnswerVocabTask):
    known_options = ("qa_format",)

    def check_options(self) -> None:
        self._qa_key("test")

    def read_if_present(self, split: str) -> list[str]:
        return ["mapping"]

    def _qa_key(self, split: str) -> str:
        f = self.options.get("qa_format", "encode")
        if f not in ("encode", "original"):
            raise ValueError(f"task {self.name!r}: qa_format must be 'encode' or 'original', got {f!r}")
        return split if f == "encode" else f"{split}_original"

    def required_files(self, split: str) -> list[RequiredFile]:
        out = []
        for key in (self._qa_key(split), "answers"):  # the clip-id mapping is optional (else videos vid<k>)
            what, where = self.sources[key]
            out.append(RequiredFile(self.path(key), f"{self.dataset} {what} ({self.files[key]})", where))
        return out

    def _vocab(self) -> dict[str, int]:
        return {a: i for i, (_, a) in enumerate(read_lines(self.path("answers")))}


    def _mapping(self, problems: Problems) -> dict[int, str]:
        path: Path = self.path("mapping")
        out = {}
        for line, text in read_lines(path):
            parts = text.split()
            if len(parts) != 2 or not parts[1].startswith("vid") or not parts[1][3:].isdigit():
                problems.bad(path, f"line {line}", f"expected '<clip_id> vid<k>', got {text!r}")
                continue
            out[int(parts[1][3:])] = parts[0]
        return out

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        vocab = self._vocab()
        mapping = self._mapping(problems) if self.has("mapping") else {}
        unmapped: set[int] = set()
        path = self.path(self._qa_key(split))
        data = read_json(path)
        if not isinstance(data, list):
            raise AnnotationError(f"{path}: expected a JSON list of questions")
        out = []
        for i, rec in enumerate(data):
            where = f"record {i} (id={rec.get('id') if isinstance(rec, dict) else None})"
            if not isinstance(rec, dict) or not all(k in rec for k in ("id", "question", "answer", "video_id")):
                problems.bad(path, where, "needs 'id', 'question', 'answer' and 'video_id'")
                continue
            try:
                k = int(rec["video_id"])
            except (TypeError, ValueError):
                problems.bad(path, where, f"video_id {rec['video_id']!r} is not an integer")
                continue
            if k not in mapping:  # video named vid<k> (MSVD-QA's own naming) when the mapping does not know it
                unmapped.add(k)
            clip = mapping.get(k, f"vid{k}")
            ans = str(rec["answer"]).strip()
            q = str(rec["question"]).strip()
            out.append(Sample(id=str(rec["id"]), video=self._video(clip), texts=[q], answer=ans, label=vocab.get(ans),
                              extra={"answer_type": q.split(" ", 1)[0].lower(), "in_vocab": ans in vocab,
                                     "clip_id": clip, "vid": k}))
        if unmapped:
            problems.note(f"{len(unmapped)} video id(s) not in {self.files['mapping']} (e.g. vid{min(unmapped)}): "
                          "their video path uses the name vid<k>")
            problems.report.counts["unmapped_videos"] = len(unmapped)
        return out

"""TGIF-QA FrameQA (``FORMATS.md`` s.8).

* Original ``{Train,Test}_frameqa_question.csv``: TAB separated despite the name, CRLF, one header row
  ``gif_name question answer type vid_id key description``; ``type`` 0..3 = object/number/color/location.
* ClipBERT ``frameqa_{train,val,test}.jsonl`` (``gif_name``, ``question``, ``answer``, ``answer_type``) and the
  answer vocabulary ``frameqa_trainval_ans2label.json`` (1,540 answers). The val split exists only there.

Option ``qa_format``: ``original`` (default for train/test) or ``clipbert`` (always for val).

Sample ids: one per question. In the original files the ``key`` column identifies the GIF (TGIF's index; the
real test file has 13,691 questions on 7,132 keys, each key always with the same ``gif_name``), while
``vid_id`` (``FRAMEQA<n>``) is unique per question (13,691 distinct, checked on
``YunseokJANG/tgif-qa:dataset/Test_frameqa_question.csv``): the id is ``vid_id``, else ``<split>_<line>``.
The ClipBERT files carry no id: ``<split>_<line index>``.
"""

from __future__ import annotations

from tasks.base import RequiredFile, Sample
from tasks.datasets.common import (
    AnnotationError,
    AnswerVocabTask,
    Problems,
    read_json,
    read_jsonl,
    read_tsv,
)

TYPES = {"0": "object", "1": "number", "2": "color", "3": "location"}


class TgifFrameQA(AnswerVocabTask):
    known_options = ("qa_format",)

    def _key(self, split: str) -> str:
        f = self.options.get("qa_format", "original")
        if f not in ("original", "clipbert"):
            raise ValueError(f"task {self.name!r}: qa_format must be 'original' or 'clipbert', got {f!r}")
        return f"{split}_original" if f == "original" and split != "val" else f"{split}_clipbert"

    def check_options(self) -> None:
        self._key("test")

    def required_files(self, split: str) -> list[RequiredFile]:
        out = []
        for key in (self._key(split), "answers"):
            what, where = self.sources[key]
            out.append(RequiredFile(self.path(key), f"{self.dataset} {what} ({self.files[key]})", where))
        return out

    def _vocab(self) -> dict[str, int]:
        v = read_json(self.path("answers"))
        if not isinstance(v, dict):
            raise AnnotationError(f"{self.path('answers')}: expected a JSON object answer -> index")
        return {str(k): int(i) for k, i in v.items()}

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        vocab, key = self._vocab(), self._key(split)
        path = self.path(key)
        recs: list[tuple[str, dict]] = []
        if key.endswith("_original"):
            rows = read_tsv(path)
            header = [h.strip() for h in rows[0][1]] if rows else []
            need = ("gif_name", "question", "answer", "type")
            if not set(need) <= set(header):
                raise AnnotationError(f"{path}: header {header} lacks {sorted(set(need) - set(header))} "
                                      "(the file must be TAB separated)")
            col = {h: j for j, h in enumerate(header)}
            for line, f in rows[1:]:
                if len(f) != len(header):
                    problems.bad(path, f"line {line}", f"{len(f)} TAB fields, header has {len(header)}")
                    continue
                t = f[col["type"]].strip()
                if t not in TYPES:
                    problems.bad(path, f"line {line}", f"type {t!r} is not 0..3")
                    continue
                rec = {h: f[j].strip() for h, j in col.items()}
                rec["answer_type"] = TYPES[t]
                rec["line"] = line
                recs.append((rec.get("vid_id") or f"{split}_{line}", rec))
        else:
            for line, rec in read_jsonl(path, problems):
                if not isinstance(rec, dict) or not all(k in rec for k in ("gif_name", "question", "answer")):
                    problems.bad(path, f"line {line}", "needs 'gif_name', 'question' and 'answer'")
                    continue
                recs.append((f"{split}_{line - 1}", {**rec, "line": line}))
        out = []
        for sid, rec in recs:
            ans = str(rec["answer"]).strip()
            out.append(Sample(id=str(sid), video=self.video_path(video_id=str(rec["gif_name"])),
                              texts=[str(rec["question"]).strip()], answer=ans, label=vocab.get(ans),
                              extra={"answer_type": rec.get("answer_type"), "in_vocab": ans in vocab,
                                     "gif_name": rec["gif_name"], "gif_key": rec.get("key"), "line": rec["line"]}))
        return out

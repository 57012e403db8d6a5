"""MSR-VTT: captioning, 1k-A retrieval, MSRVTT-QA (open-ended) and the multiple-choice test (``FORMATS.md`` s.4).

* ``MSRVTT_data.json`` (CLIP4Clip release of the official annotations): ``videos`` (``video_id``, ``split``) and
  ``sentences`` (``video_id``, ``caption``, ``sen_id``); 20 captions per video.
* ``MSRVTT_train.9k.csv`` (header ``video_id``) and ``MSRVTT_JSFUSION_test.csv`` (``key,vid_key,video_id,sentence``,
  one caption per 1k-A test video). 1k-A retrieval: one sample per test video with that caption; training:
  one sample per 9k video with all its captions.
* Captioning (paper B.2: train on 9k, report on 1k-A): references are all the video's captions in
  ``MSRVTT_data.json``; option ``split_scheme: full`` uses the official 6,513 / 497 / 2,990 split instead.
* MSRVTT-QA: ClipBERT JSON lines ``msrvtt_qa_<split>.jsonl`` (``question``, ``answer``, ``video_id``,
  ``answer_type``) or, with option ``qa_format: original``, Xu et al.'s ``<split>_qa.json`` (``id``,
  ``question``, ``answer``, integer ``video_id``). Answer vocabulary ``msrvtt_train_ans2label.json`` (1,500);
  questions with an answer outside it keep ``label=None`` and still count (as wrong unless matched).
* MC: ``msrvtt_mc_test.jsonl`` (``qid``, ``clip_name``, ``options`` x5, ``answer`` index as a string).
"""

from __future__ import annotations

from collections import defaultdict

from tasks.base import RequiredFile, Sample
from tasks.datasets.common import (
    AnnotationError,
    AnswerVocabTask,
    OfficialTask,
    Problems,
    read_csv_rows,
    read_json,
    read_jsonl,
)


class _Msrvtt(OfficialTask):
    def _video(self, vid: str) -> str:
        return self.video_path(video_id=vid)

    def _data(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Captions per video (in ``sen_id`` order) and the official split of each video."""
        path = self.path("data")
        d = read_json(path)
        if not isinstance(d, dict) or "sentences" not in d:
            raise AnnotationError(f"{path}: expected an object with 'videos' and 'sentences'")
        caps: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, s in enumerate(d["sentences"]):
            try:
                caps[str(s["video_id"])].append((int(s.get("sen_id", i)), str(s["caption"]).strip()))
            except (KeyError, TypeError, ValueError) as err:
                raise AnnotationError(f"{path}: sentences[{i}] needs 'video_id' and 'caption' ({err})") from err
        splits = {str(v["video_id"]): str(v.get("split", "")) for v in d.get("videos", []) if "video_id" in v}
        return {k: [c for _, c in sorted(v)] for k, v in caps.items()}, splits

    def _id_list(self, key: str, column: str = "video_id") -> list[str]:
        path = self.path(key)
        rows = read_csv_rows(path)
        if not rows or column not in rows[0][1]:
            raise AnnotationError(f"{path}: first row must be a header with column {column!r}")
        j = rows[0][1].index(column)
        return [r[j].strip() for _, r in rows[1:] if len(r) > j and r[j].strip()]


class MsrvttCaptioning(_Msrvtt):
    known_options = ("split_scheme",)

    def check_options(self) -> None:
        self._scheme()

    def _scheme(self) -> str:
        s = self.options.get("split_scheme", "1k-A")
        if s not in ("1k-A", "full"):
            raise ValueError(f"task {self.name!r}: split_scheme must be '1k-A' or 'full', got {s!r}")
        return s

    def required_files(self, split: str) -> list[RequiredFile]:
        req = super().required_files(split)
        if self._scheme() == "full":  # the official split lives in MSRVTT_data.json
            req = [r for r in req if r.path == self.path("data")]
        return req

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        caps, official = self._data()
        if self._scheme() == "full":
            name = {"train": "train", "val": "validate", "test": "test"}[split]
            vids = [v for v, s in official.items() if s == name]
        else:
            if split == "val":
                raise ValueError(f"task {self.name!r}: the 1k-A scheme has no val split (use split_scheme=full)")
            vids = self._id_list("train_9k" if split == "train" else "test_1ka")
        out = []
        for v in dict.fromkeys(vids):
            if not caps.get(v):
                problems.bad(self.path("data"), f"video {v}", "no caption for a video of the split")
                continue
            out.append(Sample(id=v, video=self._video(v), texts=caps[v], references=caps[v]))
        return out


class MsrvttRetrieval(_Msrvtt):
    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        if split == "test":
            path = self.path("test_1ka")
            rows = read_csv_rows(path)
            header = rows[0][1] if rows else []
            if not {"video_id", "sentence"} <= set(header):
                raise AnnotationError(f"{path}: header must contain video_id and sentence, got {header}")
            iv, isent = header.index("video_id"), header.index("sentence")
            ikey = header.index("key") if "key" in header else None
            out = []
            for row_no, r in rows[1:]:
                if len(r) != len(header) or not r[isent].strip():
                    problems.bad(path, f"row {row_no}", f"{len(r)} fields or empty sentence")
                    continue
                out.append(Sample(id=r[iv], video=self._video(r[iv]), texts=[r[isent].strip()],
                                  extra={"key": r[ikey] if ikey is not None else None, "row": row_no}))
            return out
        caps, _ = self._data()
        out = []
        for v in dict.fromkeys(self._id_list("train_9k")):
            if not caps.get(v):
                problems.bad(self.path("data"), f"video {v}", "no caption for a training video")
                continue
            out.append(Sample(id=v, video=self._video(v), texts=caps[v]))
        return out


class MsrvttQA(_Msrvtt, AnswerVocabTask):
    known_options = ("qa_format",)

    def check_options(self) -> None:
        self._format()

    def _format(self) -> str:
        f = self.options.get("qa_format", "clipbert")
        if f not in ("clipbert", "original"):
            raise ValueError(f"task {self.name!r}: qa_format must be 'clipbert' or 'original', got {f!r}")
        return f

    def required_files(self, split: str) -> list[RequiredFile]:
        req = super().required_files(split)
        if self._format() == "original":
            orig = self.path(f"{split}_original")
            what, where = self.sources.get(f"{split}_original", ["", ""])
            req = [r for r in req if r.path == self.path("answers")] + [
                RequiredFile(orig, f"{self.dataset} {what} ({orig.name}, split {split})", where)]
        return req

    def _vocab(self) -> dict[str, int]:
        if not self.has("answers"):
            return {}
        v = read_json(self.path("answers"))
        if not isinstance(v, dict):
            raise AnnotationError(f"{self.path('answers')}: expected a JSON object answer -> index")
        return {str(k): int(i) for k, i in v.items()}

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        vocab = self._vocab()
        out = []
        if self._format() == "clipbert":
            path = self.path(split)
            for line, rec in read_jsonl(path, problems):
                if not isinstance(rec, dict) or not all(k in rec for k in ("question", "answer", "video_id")):
                    problems.bad(path, f"line {line}", "needs 'question', 'answer' and 'video_id'")
                    continue
                out.append(self._sample(f"{split}_{line - 1}", str(rec["video_id"]), rec, vocab))
        else:
            path = self.path(f"{split}_original")
            data = read_json(path)
            for i, rec in enumerate(data if isinstance(data, list) else []):
                if not isinstance(rec, dict) or not all(k in rec for k in ("question", "answer", "video_id", "id")):
                    problems.bad(path, f"record {i}", "needs 'id', 'question', 'answer' and 'video_id'")
                    continue
                out.append(self._sample(str(rec["id"]), f"video{int(rec['video_id'])}", rec, vocab))
        return out

    def _sample(self, sid: str, vid: str, rec: dict, vocab: dict[str, int]) -> Sample:
        ans = str(rec["answer"]).strip()
        qtype = rec.get("answer_type") or str(rec["question"]).split(" ", 1)[0].lower()
        return Sample(id=sid, video=self._video(vid), texts=[str(rec["question"]).strip()], answer=ans,
                      label=vocab.get(ans), extra={"answer_type": qtype, "in_vocab": ans in vocab if vocab else None,
                                                   "video_id": vid})


class MsrvttMultipleChoice(_Msrvtt):
    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        out = []
        for line, rec in read_jsonl(path, problems):
            where = f"line {line}"
            if not isinstance(rec, dict) or not all(k in rec for k in ("qid", "clip_name", "options", "answer")):
                problems.bad(path, where, "needs 'qid', 'clip_name', 'options' and 'answer'")
                continue
            opts = [str(o) for o in rec["options"]]
            try:
                ans = int(rec["answer"])
            except (TypeError, ValueError):
                problems.bad(path, where, f"answer {rec['answer']!r} is not an option index")
                continue
            if not 0 <= ans < len(opts):
                problems.bad(path, where, f"answer index {ans} outside {len(opts)} options")
                continue
            out.append(Sample(id=str(rec["qid"]), video=self._video(str(rec["clip_name"])), texts=opts, options=opts,
                              answer_index=ans, extra={"title": rec.get("title")}))
        return out

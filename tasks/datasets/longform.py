"""Long-form video QA: How2QA (4-way multiple choice) and VIOLIN (entailment) (``FORMATS.md`` s.11-12).

How2QA original release ``how2QA_{train,val}_release.csv`` / ``how2QA_test_public_release.csv``: comma CSV
with double-quote quoting, **no header**, 7 fields ``youtube_id, [start:end], wrong_1, wrong_2, wrong_3,
question, correct``. The correct answer is always last, so the four candidates are shuffled
deterministically (SHA-256 of option ``option_seed`` and the record, see ``shuffled_options``). The clip is
``[start:end]`` of the YouTube video (``extra["clip_span"]``), checked by the shared span check. Sample id
``<split>_<row:05d>``: one per question (the file has no qid; a YouTube id carries several questions).

VIOLIN ``violin_annotation.json``: object keyed by clip id; ``file``, ``split`` (train / validate / test),
``sub`` (subtitle entries, element 0 = text), ``statement`` (3 ``[positive, negative]`` pairs). Each statement
is one sample with ``options = ["entailment", "contradiction"]`` and ``answer_index`` 0 (positive) or 1
(negative), ``texts = [statement]``, the subtitles in ``extra["subtitles"]``. No real VIOLIN file was
available when this was written; the loader follows the official baseline's reader.
"""

from __future__ import annotations

import re

from tasks.base import Sample
from tasks.datasets.common import AnnotationError, OfficialTask, Problems, read_csv_rows, read_json, shuffled_options

_SPAN = re.compile(r"^\[([^:\]]*):([^:\]]*)\]$")
VIOLIN_OPTIONS = ["entailment", "contradiction"]


class How2QA(OfficialTask):
    known_options = ("option_seed",)

    def check_options(self) -> None:
        self.int_option("option_seed", 0)

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        seed = self.int_option("option_seed", 0)
        out = []
        for row, f in read_csv_rows(path):
            where = f"row {row}"
            if len(f) != 7:
                problems.bad(path, where, f"{len(f)} fields, expected 7 (id, [start:end], 3 wrong, question, correct)")
                continue
            m = _SPAN.match(f[1].strip())
            if not m:
                problems.bad(path, where, f"field 2 (time span) {f[1]!r} is not '[start:end]'")
                continue
            span = problems.span(path, where, "2 (time span)", m.group(1).strip(), m.group(2).strip())
            if span is None:
                continue
            t0, t1 = span
            answers = [x.strip() for x in (f[2], f[3], f[4], f[6])]
            if not f[5].strip() or any(not a for a in answers):
                problems.bad(path, where, "empty question or candidate answer")
                continue
            opts, ans = shuffled_options(answers[3], answers[:3], f"{f[0]}:{f[1]}:{f[5]}", seed)
            out.append(Sample(id=f"{split}_{row:05d}", video=self.video_path(video_id=f[0].strip()),
                              texts=[f[5].strip()], options=opts, answer_index=ans, spans=[(t0, t1)],
                              extra={"clip_span": (t0, t1), "row": row, "youtube_id": f[0].strip()}))
        return out


class Violin(OfficialTask):
    _SPLITS = {"train": "train", "val": "validate", "test": "test"}

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path("annotations")
        data = read_json(path)
        if not isinstance(data, dict):
            raise AnnotationError(f"{path}: expected a JSON object keyed by clip id")
        out = []
        for cid, clip in data.items():
            if not isinstance(clip, dict) or clip.get("split") != self._SPLITS[split]:
                continue
            where = f"clip {cid}"
            st = clip.get("statement")
            if not isinstance(st, list) or not st or not all(isinstance(p, list) and len(p) == 2 for p in st):
                problems.bad(path, where, "'statement' must be a list of [positive, negative] pairs")
                continue
            subs = [str(s[0]) if isinstance(s, (list, tuple)) and s else str(s) for s in clip.get("sub", [])]
            video = self.video_path(video_id=str(clip.get("file", cid)), source=str(clip.get("source", "")))
            for j, (pos, neg) in enumerate(st):
                for label, text in ((0, pos), (1, neg)):
                    out.append(Sample(id=f"{cid}_{j}_{'pos' if label == 0 else 'neg'}", video=video,
                                      texts=[str(text).strip()], options=list(VIOLIN_OPTIONS), answer_index=label,
                                      extra={"clip_id": cid, "subtitles": subs, "source": clip.get("source")}))
        return out

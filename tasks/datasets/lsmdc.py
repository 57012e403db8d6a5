"""LSMDC 2016: retrieval, multiple choice, fill-in-the-blank (``FORMATS.md`` s.6).

The annotations are access-controlled (signed agreement with MPII), so no real records ship with this
repository; the loaders follow the official readmes (README_MC.txt / README_PP.txt) and are tested on
records written in that format.

* ``LSMDC16_annos_{training,val,test}.csv``, ``LSMDC16_challenge_1000_publictect.csv``: TAB separated, no
  header, exactly 6 fields ``clip_id, start_aligned, end_aligned, start_extracted, end_extracted, sentence``;
  quoting is disabled (sentences contain unbalanced ``"``). Retrieval: train on the training file (one sample
  per clip with all its sentences), evaluate on the 1,000 challenge clips (one sentence each).
* Multiple choice: ``LSMDC16_multiple_choice_{train,valid}.csv`` = 5 clip fields + correct sentence + 4
  distractors (valid lines end with an extra empty field); the candidates are shuffled deterministically
  (option ``option_seed``) since the answer is always first. ``LSMDC16_multiple_choice_test_randomized.csv``
  = 5 clip fields + 5 candidates + the 1-based index of the correct one.
* Fill-in-the-blank (JSFusion pre-processing, MovieFIB): ``LSMDC16_FIB_{train,val,test}.csv``, TAB separated
  with a header (pandas ``to_csv(sep="\\t")``: first column the ``key`` index, possibly unnamed), columns
  ``vid_key``, ``blank_sentence``, ``answer``.

Clip ``1010_TITANIC_00.41.32.072-00.41.40.196`` lives at ``1010_TITANIC/<clip_id>.avi`` (template fields
``movie``, ``video_id``).
"""

from __future__ import annotations

from collections import OrderedDict

from tasks.base import Sample
from tasks.datasets.common import AnnotationError, OfficialTask, Problems, read_tsv, shuffled_options


def _movie(clip_id: str) -> str:
    return clip_id.rsplit("_", 1)[0] if "_" in clip_id else clip_id


class _Lsmdc(OfficialTask):
    def _video(self, clip: str) -> str:
        return self.video_path(video_id=clip, movie=_movie(clip))


class LsmdcRetrieval(_Lsmdc):
    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        clips: OrderedDict[str, list[str]] = OrderedDict()
        spans: dict[str, tuple[str, str]] = {}
        for line, f in read_tsv(path):
            if len(f) != 6:
                problems.bad(path, f"line {line}", f"{len(f)} TAB fields, expected 6 (clip_id, 4 times, sentence)")
                continue
            if not f[5].strip():
                problems.bad(path, f"line {line} (clip {f[0]})", "empty sentence")
                continue
            clips.setdefault(f[0], []).append(f[5].strip())
            spans.setdefault(f[0], (f[1], f[2]))
        return [Sample(id=c, video=self._video(c), texts=t, extra={"aligned": spans[c]}) for c, t in clips.items()]


class LsmdcMultipleChoice(_Lsmdc):
    known_options = ("option_seed",)

    def check_options(self) -> None:
        self.int_option("option_seed", 0)

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        seed = self.int_option("option_seed", 0)
        out = []
        for line, f in read_tsv(path):
            where = f"line {line}"
            if split == "test":
                if len(f) != 11:
                    problems.bad(path, where, f"{len(f)} TAB fields, expected 11 (5 clip fields, 5 candidates, index)")
                    continue
                opts = [x.strip() for x in f[5:10]]
                try:
                    ans = int(f[10]) - 1
                except ValueError:
                    problems.bad(path, where, f"answer index {f[10]!r} is not an integer")
                    continue
                if not 0 <= ans < 5:
                    problems.bad(path, where, f"answer index {f[10]} outside 1..5")
                    continue
            else:
                fields = f[:10] if len(f) == 11 and not f[10].strip() else f  # valid: trailing empty field
                if len(fields) != 10:
                    problems.bad(path, where, f"{len(f)} TAB fields, expected 10 (5 clip fields, correct, 4 wrong)")
                    continue
                opts, ans = shuffled_options(fields[5].strip(), [x.strip() for x in fields[6:10]],
                                             f"{fields[0]}:{line}", seed)
            if any(not o for o in opts):
                problems.bad(path, where, "empty candidate sentence")
                continue
            out.append(Sample(id=f"{split}_{line:05d}", video=self._video(f[0]), texts=opts, options=opts,
                              answer_index=ans, extra={"clip_id": f[0], "line": line}))
        return out


class LsmdcFillInBlank(_Lsmdc):
    def count_classes(self, samples: list[Sample]) -> int | None:
        return len({s.answer for s in samples}) or None

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        rows = read_tsv(path)
        if not rows:
            return []
        header = [h.strip() for h in rows[0][1]]
        if header and header[0] == "":
            header[0] = "key"  # pandas writes the unnamed index column with an empty header
        need = {"key", "vid_key", "blank_sentence", "answer"}
        if not need <= set(header):
            raise AnnotationError(f"{path}: header {header} lacks columns {sorted(need - set(header))}")
        col = {h: j for j, h in enumerate(header)}
        out = []
        for line, f in rows[1:]:
            if len(f) != len(header):
                problems.bad(path, f"line {line}", f"{len(f)} TAB fields, header has {len(header)}")
                continue
            sent, ans = f[col["blank_sentence"]].strip(), f[col["answer"]].strip()
            if not sent or not ans:
                problems.bad(path, f"line {line} (key {f[col['key']]})", "empty blank_sentence or answer")
                continue
            clip = f[col["vid_key"]].strip()
            out.append(Sample(id=f[col["key"]].strip(), video=self._video(clip), texts=[sent], answer=ans,
                              extra={"clip_id": clip, "line": line}))
        return out

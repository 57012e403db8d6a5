"""DiDeMo paragraph-to-video retrieval (``FORMATS.md`` s.7): ``{train,val,test}_data.json`` (LocalizingMoments).

Each JSON element is one description (``video``, ``description``, ``times``, ``num_segments``,
``annotation_id``). As in CLIP4Clip / CE / ClipBERT, all descriptions of a video are joined with a single
space, in file order, into one paragraph matched to the full video: one sample per video, ``texts=[paragraph]``,
the per-description moments kept in ``extra['sentence_spans']`` (CLIP4Clip's conversion: start = mean(starts) * 5,
end = (mean(ends) + 1) * 5 seconds). Video names keep their original extension (some end with a bare ``.``).
Option ``restrict_to_list: true`` keeps only the videos of the collaborative-experts split list (1,004 test).

Each annotator's ``[start_seg, end_seg]`` goes through the shared span check (end inclusive, so equal is a
one-segment moment) and must be whole segment indices with ``end_seg < num_segments`` (true of all 4,021 test and
4,180 val descriptions, checked). Sample id: the video name, one per video (one paragraph per video).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from tasks.base import Sample
from tasks.datasets.common import AnnotationError, OfficialTask, Problems, read_json, read_lines


def _moments(path: Path, where: str, rec: dict[str, Any], problems: Problems) -> list[tuple[float, float]] | None:
    """The checked ``[start_seg, end_seg]`` pairs of one description, or None after reporting the first bad one."""
    raw, n_seg = rec["times"], rec.get("num_segments")
    if not isinstance(raw, list):
        problems.bad(path, where, f"field 'times' must be a list of [start, end] segment pairs, got {raw!r}")
        return None
    out = []
    for j, t in enumerate(raw):
        field = f"times[{j}]"
        if not isinstance(t, (list, tuple)) or len(t) != 2:
            problems.bad(path, where, f"field {field!r} must be [start_seg, end_seg], got {t!r}")
            return None
        span = problems.span(path, where, field, t[0], t[1], allow_empty=True)
        if span is None:
            return None
        if any(x != int(x) for x in span):
            problems.bad(path, where, f"field {field!r}: segment indices must be whole numbers, got {list(t)}")
            return None
        if isinstance(n_seg, int) and not isinstance(n_seg, bool) and span[1] >= n_seg:
            problems.bad(path, where, f"field {field!r}: end segment {span[1]:g} >= num_segments {n_seg}")
            return None
        out.append(span)
    return out


class DidemoRetrieval(OfficialTask):
    known_options = ("restrict_to_list",)

    def check_options(self) -> None:
        self.bool_option("restrict_to_list")

    def read_if_present(self, split: str) -> list[str]:
        return [f"{split}_list"] if self.bool_option("restrict_to_list") else []

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        data = read_json(path)
        if not isinstance(data, list):
            raise AnnotationError(f"{path}: expected a JSON array of descriptions")
        videos: OrderedDict[str, list[tuple[str, tuple[float, float]]]] = OrderedDict()
        for i, rec in enumerate(data):
            where = f"record {i} (annotation_id={rec.get('annotation_id') if isinstance(rec, dict) else None})"
            if not isinstance(rec, dict) or not all(k in rec for k in ("video", "description", "times")):
                problems.bad(path, where, "needs 'video', 'description' and 'times'")
                continue
            times = _moments(path, where, rec, problems)
            if times is None:
                continue
            if not times or not str(rec["description"]).strip():
                problems.bad(path, where, "empty description or no annotator times")
                continue
            start = sum(a for a, _ in times) / len(times) * 5.0
            end = (sum(b for _, b in times) / len(times) + 1.0) * 5.0
            videos.setdefault(str(rec["video"]), []).append((str(rec["description"]).strip(), (start, end)))
        if self.bool_option("restrict_to_list"):
            listed = {ln for _, ln in read_lines(self.path(f"{split}_list"))}
            videos = OrderedDict((v, d) for v, d in videos.items() if v in listed)
        return [Sample(id=v, video=self.video_path(video_id=v), texts=[" ".join(t for t, _ in d)],
                       extra={"sentences": [t for t, _ in d], "sentence_spans": [s for _, s in d]})
                for v, d in videos.items()]

"""DiDeMo paragraph-to-video retrieval (``FORMATS.md`` s.7): ``{train,val,test}_data.json`` (LocalizingMoments).

Each JSON element is one description (``video``, ``description``, ``times``, ``num_segments``,
``annotation_id``). As in CLIP4Clip / CE / ClipBERT, all descriptions of a video are joined with a single
space, in file order, into one paragraph matched to the full video: one sample per video, ``texts=[paragraph]``,
the per-description moments kept in ``extra['sentence_spans']`` (CLIP4Clip's conversion: start = mean(starts) * 5,
end = (mean(ends) + 1) * 5 seconds). Video names keep their original extension (some end with a bare ``.``).
Option ``restrict_to_list: true`` keeps only the videos of the collaborative-experts split list (1,004 test).
"""

from __future__ import annotations

from collections import OrderedDict

from tasks.base import Sample
from tasks.datasets.common import AnnotationError, OfficialTask, Problems, read_json, read_lines


class DidemoRetrieval(OfficialTask):
    known_options = ("restrict_to_list",)

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
            try:
                times = [(float(a), float(b)) for a, b in rec["times"]]
            except (TypeError, ValueError):
                problems.bad(path, where, f"'times' must be a list of [start, end] segment pairs, got {rec['times']!r}")
                continue
            if not times or not str(rec["description"]).strip():
                problems.bad(path, where, "empty description or no annotator times")
                continue
            start = sum(a for a, _ in times) / len(times) * 5.0
            end = (sum(b for _, b in times) / len(times) + 1.0) * 5.0
            videos.setdefault(str(rec["video"]), []).append((str(rec["description"]).strip(), (start, end)))
        if self.options.get("restrict_to_list"):
            listed = {ln for _, ln in read_lines(self.path(f"{split}_list"))}
            videos = OrderedDict((v, d) for v, d in videos.items() if v in listed)
        return [Sample(id=v, video=self.video_path(video_id=v), texts=[" ".join(t for t, _ in d)],
                       extra={"sentences": [t for t, _ in d], "sentence_spans": [s for _, s in d]})
                for v, d in videos.items()]

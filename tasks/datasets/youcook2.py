"""YouCook2 segment captioning (``FORMATS.md`` s.3): ``youcookii_annotations_trainval.json``.

One sample per annotated segment: the clip is the ground-truth ``segment`` of the untrimmed video
(``Sample.extra["clip_span"]``), the single reference is its ``sentence``. Splits come from each video's
``subset`` (``training`` -> train, ``validation`` -> val); the test videos have no annotations. If the
official split lists are present they are cross-checked (videos listed but absent from the json are
reported as problems).

Sample id ``<youtube_id>_<annotation id>``: one per segment (``id`` counts 0, 1, ... within a video). Segments
go through the shared span check (:mod:`tasks.datasets.spans`, against the video's ``duration``); a segment
without an integer ``id``, ``segment`` or ``sentence`` is a bad record naming the video and the field.
"""

from __future__ import annotations

from tasks.base import Sample
from tasks.datasets.common import AnnotationError, OfficialTask, Problems, read_json, read_lines

_SUBSET = {"train": "training", "val": "validation"}


class YouCook2Captioning(OfficialTask):
    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path("annotations")
        db = read_json(path)
        if not isinstance(db, dict) or not isinstance(db.get("database"), dict):
            raise AnnotationError(f"{path}: expected an object with a 'database' mapping")
        out = []
        videos = set()
        for yid, v in db["database"].items():
            if not isinstance(v, dict) or v.get("subset") != _SUBSET[split]:
                continue
            anns = v.get("annotations")
            if not isinstance(anns, list):
                problems.bad(path, f"video {yid}", "no 'annotations' list")
                continue
            videos.add(f"{v.get('recipe_type')}/{yid}")
            video = self.video_path(video_id=yid, subset=v["subset"], recipe_type=v.get("recipe_type", ""))
            for k, a in enumerate(anns):
                where = f"video {yid} annotation #{k}"
                if not isinstance(a, dict):
                    problems.bad(path, where, f"annotation must be an object, got {a!r:.60}")
                    continue
                aid = a.get("id")
                if isinstance(aid, bool) or not isinstance(aid, int):
                    problems.bad(path, where, f"field 'id' must be the segment's integer id, got {aid!r}")
                    continue
                where = f"video {yid} annotation id {aid}"
                seg = a.get("segment")
                if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                    problems.bad(path, where, f"field 'segment' must be [start, end], got {seg!r}")
                    continue
                span = problems.span(path, where, "segment", seg[0], seg[1], duration=v.get("duration"))
                if span is None:
                    continue
                t0, t1 = span
                sentence = str(a.get("sentence") or "").strip()
                if not sentence:
                    problems.bad(path, where, "field 'sentence' is missing or empty")
                    continue
                out.append(Sample(id=f"{yid}_{aid}", video=video, texts=[sentence], references=[sentence],
                                  spans=[(t0, t1)], extra={"clip_span": (t0, t1), "recipe_type": v.get("recipe_type"),
                                                           "duration": v.get("duration"),
                                                           "record": f"{yid}#{k}"}))
        if self.has(f"{split}_list"):
            listed = {ln for _, ln in read_lines(self.path(f"{split}_list"))}
            lost = sorted(listed - videos)
            if lost:
                problems.note(f"{len(lost)} video(s) of {self.files[split + '_list']} have no annotation in "
                              f"{self.files['annotations']} (e.g. {lost[0]})")
        return out

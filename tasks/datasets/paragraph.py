"""Video-paragraph retrieval: ActivityNet Captions and QuerYD (``FORMATS.md`` s.9-10).

ActivityNet Captions ``train.json`` / ``val_1.json``: object keyed by ``v_<youtube_id>`` with ``duration``,
``timestamps`` and ``sentences`` (same length); each timestamp goes through the shared span check (zero-length
segments are accepted: the official training file has two). Paragraph = the video's sentences, each stripped (many start
with a space), joined with one space in file order (CLIP4Clip ``" ".join``). Option ``sort_by_time: true``
orders them by start time first. One sample per video, ``texts=[paragraph]``; the sentence spans are kept in
``extra["sentence_spans"]``.

QuerYD (video level): split lists ``{train,val,test}_list.txt`` (``video-<youtube_id>``) and the caption pickle
``raw_captions_combined_filtered.pkl`` (dict id -> list of captions, each a list of tokens; from the feature
tarball's ``structured-symlinks/``). The descriptions of a video are fused into one paragraph query
(``fuse_captions``, one test caption per video, as in the collaborative-experts QuerYD loader).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.base import Sample
from tasks.datasets.common import (
    AnnotationError,
    OfficialTask,
    Problems,
    caption_text,
    read_json,
    read_lines,
    read_pickle,
)


class ActivityNetParagraph(OfficialTask):
    known_options = ("sort_by_time",)

    def check_options(self) -> None:
        self.bool_option("sort_by_time")

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        path = self.path(split)
        data = read_json(path)
        if not isinstance(data, dict):
            raise AnnotationError(f"{path}: expected a JSON object keyed by video id")
        out = []
        for vid, v in data.items():
            where = f"video {vid}"
            if not isinstance(v, dict) or not isinstance(v.get("sentences"), list):
                problems.bad(path, where, "needs 'sentences' and 'timestamps'")
                continue
            sents, ts = v["sentences"], v.get("timestamps") or []
            if len(ts) != len(sents):
                problems.bad(path, where, f"{len(sents)} sentences but {len(ts)} timestamps")
                continue
            pairs = _sentence_spans(path, where, sents, ts, v.get("duration"), problems)
            if pairs is None:
                continue
            pairs = [p for p in pairs if p[0]]
            if not pairs:
                problems.bad(path, where, "no non-empty sentence")
                continue
            if self.bool_option("sort_by_time"):
                pairs.sort(key=lambda p: p[1][0])
            yid = vid[2:] if vid.startswith("v_") else vid
            out.append(Sample(id=vid, video=self.video_path(video_id=vid, youtube_id=yid),
                              texts=[" ".join(s for s, _ in pairs)],
                              extra={"duration": v.get("duration"), "sentences": [s for s, _ in pairs],
                                     "sentence_spans": [t for _, t in pairs]}))
        return out


def _sentence_spans(path: Path, where: str, sents: list, ts: list, duration: Any, problems: Problems
                    ) -> list[tuple[str, tuple[float, float]]] | None:
    """``(stripped sentence, checked span)`` per sentence, or None after reporting the first bad timestamp."""
    out = []
    for j, (sent, t) in enumerate(zip(sents, ts)):
        if not isinstance(t, (list, tuple)) or len(t) != 2:
            problems.bad(path, where, f"field 'timestamps[{j}]' must be [start, end], got {t!r}")
            return None
        span = problems.span(path, where, f"timestamps[{j}]", t[0], t[1], allow_empty=True, duration=duration)
        if span is None:
            return None
        out.append((str(sent).strip(), span))
    return out


class QuerydParagraph(OfficialTask):
    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        caps = read_pickle(self.path("captions"))
        if not isinstance(caps, dict):
            raise AnnotationError(f"{self.path('captions')}: expected a dict video id -> list of captions")
        out = []
        for line, vid in read_lines(self.path(f"{split}_list")):
            cs = caps.get(vid)
            if cs is None and vid.startswith("video-"):
                cs = caps.get(vid[len("video-"):])
            texts = [caption_text(c) for c in (cs or []) if caption_text(c)]
            if not texts:
                problems.bad(self.path("captions"), f"video {vid} (line {line} of {self.files[split + '_list']})",
                             "no caption for a listed video")
                continue
            yid = vid[len("video-"):] if vid.startswith("video-") else vid
            out.append(Sample(id=vid, video=self.video_path(video_id=vid, youtube_id=yid), texts=[" ".join(texts)],
                              extra={"sentences": texts}))
        return out

"""Action recognition: Kinetics-400 (official crawler CSV) and Something-Something v2 (official JSON).

Kinetics-400 (``FORMATS.md`` s.1): comma CSV with a header, columns addressed by name (5- or 6-column
variants, ``is_cc`` ignored); ``label`` missing in the test file; class index = line of ``label_map_k400.txt``
(alphabetical, as mmaction2). Sample id ``<youtube_id>_<start:06d>_<end:06d>`` (the mmaction2 clip stem): one
per clip (unique in the official val and test CSVs, 19,906 and 38,685 rows, checked). ``time_start`` /
``time_end`` go through the shared span check and must be whole seconds.

SSV2 (s.2): JSON array of ``{id, label, template, placeholders}``; class =
``labels[template without brackets]`` from ``something-something-v2-labels.json`` (values are strings).
"""

from __future__ import annotations

from tasks.base import Sample
from tasks.datasets.common import AnnotationError, OfficialTask, Problems, read_csv_rows, read_json, read_lines


class ActionTask(OfficialTask):
    """Shared parts: class names (property, index order; None while the class file is absent) and their count."""

    num_classes: int = 0
    _class_names: list[str] | None = None  # read once, on first use

    @property
    def class_names(self) -> list[str] | None:
        """Class names in label-index order; None while the class file is absent."""
        if not self.has("classes"):
            return None
        if self._class_names is None:
            self._class_names = self._read_class_names()
        return self._class_names

    def _read_class_names(self) -> list[str]:
        raise NotImplementedError

    def count_classes(self, samples: list[Sample]) -> int | None:
        return len({s.label for s in samples if s.label is not None}) or None


class Kinetics(ActionTask):
    """Kinetics-400 from the official crawler CSVs."""

    def _read_class_names(self) -> list[str]:
        names = [ln for _, ln in read_lines(self.path("classes"))]
        if self.num_classes and len(names) != self.num_classes:
            raise AnnotationError(f"{self.path('classes')}: {len(names)} class names, expected {self.num_classes}")
        return names

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        index = {n: i for i, n in enumerate(self.class_names or [])}
        path = self.path(split)
        rows = read_csv_rows(path)
        if not rows:
            raise AnnotationError(f"{path}: empty file")
        header = [h.strip() for h in rows[0][1]]
        need = {"youtube_id", "time_start", "time_end"}
        if not need <= set(header):
            raise AnnotationError(f"{path}: header {header} lacks columns {sorted(need - set(header))}")
        col = {h: j for j, h in enumerate(header)}
        has_label = "label" in col
        out = []
        for row_no, r in rows[1:]:
            where = f"row {row_no}"
            if len(r) != len(header):
                problems.bad(path, where, f"{len(r)} fields, header has {len(header)}")
                continue
            yid = r[col["youtube_id"]].strip()
            if not yid:
                problems.bad(path, where, "field 'youtube_id' is empty")
                continue
            span = problems.span(path, where, "time_start/time_end", r[col["time_start"]], r[col["time_end"]])
            if span is None:
                continue
            if any(t != int(t) for t in span):
                problems.bad(path, where, f"field 'time_start/time_end': {span} are not whole seconds")
                continue
            t0, t1 = int(span[0]), int(span[1])
            label, name = None, None
            if has_label:
                name = r[col["label"]]
                if name not in index:
                    problems.bad(path, where, f"label {name!r} is not in {self.files['classes']}")
                    continue
                label = index[name]
            sid = f"{yid}_{t0:06d}_{t1:06d}"
            video = self.video_path(split=split, youtube_id=yid, time_start=t0, time_end=t1, video_id=sid,
                                    label=name or "", label_dir=(name or "").replace(" ", "_"))
            out.append(Sample(id=sid, video=video, texts=[name] if name else [], label=label,
                              extra={"label_name": name, "row": row_no}))
        return out


class SomethingSomething(ActionTask):
    """Something-Something v2 from the official JSON files."""

    def _labels(self) -> dict[str, int]:
        path = self.path("classes")
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise AnnotationError(f"{path}: expected a JSON object template -> index")
        try:
            return {k: int(v) for k, v in raw.items()}
        except (TypeError, ValueError) as err:
            raise AnnotationError(f"{path}: class indices must be integers (as strings): {err}") from err

    def _read_class_names(self) -> list[str]:
        labels = self._labels()
        return [k for k, _ in sorted(labels.items(), key=lambda kv: kv[1])]

    def read_split(self, split: str, problems: Problems) -> list[Sample]:
        labels = self._labels()
        path = self.path(split)
        data = read_json(path)
        if not isinstance(data, list):
            raise AnnotationError(f"{path}: expected a JSON array of records")
        out = []
        for i, rec in enumerate(data):
            where = f"record {i} (id={rec.get('id') if isinstance(rec, dict) else None!r})"
            if not isinstance(rec, dict) or "id" not in rec:
                problems.bad(path, f"record {i}", "not an object with an 'id'")
                continue
            vid = str(rec["id"])
            label = None
            if "template" in rec:
                key = str(rec["template"]).replace("[", "").replace("]", "")
                if key not in labels:
                    problems.bad(path, where, f"template {key!r} is not in {self.files['classes']}")
                    continue
                label = labels[key]
            elif split != "test":
                problems.bad(path, where, "no 'template' (class) in a labelled split")
                continue
            out.append(Sample(id=vid, video=self.video_path(video_id=vid, split=split),
                              texts=[rec["label"]] if rec.get("label") else [], label=label,
                              extra={"template": rec.get("template"), "placeholders": rec.get("placeholders"),
                                     "record": i}))
        return out

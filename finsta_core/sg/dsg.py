"""Dynamic scene-graph assembly (paper sec 3.1): per-keyframe detections + relation and attribute
classifiers + temporal coreference edges (Eq 1).

Models sit behind small protocols so a user plugs in the detector they trust:

* :class:`Detector`: ``frames [T, 3, H, W]`` float in [0, 1] -> ``list[Detections]`` (one per keyframe).
* :class:`RelationClassifier`: ``(Detections, frame_size)`` -> ``(pairs [P, 2], labels, scores [P])``.
* :class:`AttributeClassifier`: ``Detections`` -> ``(object ids [A], labels, scores [A])``.

Adapters: :mod:`finsta_core.sg.detectors` (torchvision Faster R-CNN, transformers detectors) and
:mod:`finsta_core.sg.heads` (trainable box-pair relation head and attribute head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from finsta_core.graphs.types import DynamicSceneGraph, EdgeType, NodeType
from finsta_core.sg.tracking import GAMMA_D, temporal_edges


@dataclass
class Detections:
    """Objects of one keyframe.

    Attributes:
        boxes: ``[n, 4]`` xyxy pixels of the original frame.
        labels: ``n`` class names.
        scores: ``[n]`` confidences.
        features: ``[n, F]`` region features (``f_i`` of Eq 3), or None.
    """

    boxes: Tensor
    labels: list[str]
    scores: Tensor
    features: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)


@runtime_checkable
class Detector(Protocol):
    def __call__(self, frames: Tensor) -> list[Detections]: ...


@runtime_checkable
class RelationClassifier(Protocol):
    def __call__(self, det: Detections, frame_size: tuple[int, int]) -> tuple[Tensor, list[str], Tensor]: ...


@runtime_checkable
class AttributeClassifier(Protocol):
    def __call__(self, det: Detections) -> tuple[Tensor, list[str], Tensor]: ...


def build_dsg(detections: list[Detections], timestamps: Tensor, frame_size: tuple[int, int],
              relations: RelationClassifier | None = None, attributes: AttributeClassifier | None = None,
              gamma: float = GAMMA_D, max_objects: int = 40) -> DynamicSceneGraph:
    """Assemble a :class:`DynamicSceneGraph` from per-keyframe detections.

    Per keyframe: the top ``max_objects`` detections become object nodes; attribute nodes hang off objects
    (OBJ_ATTR); each relation becomes a node with SUBJ_PRED / PRED_OBJ edges. Then Eq 1 temporal edges.
    ``meta`` records ``continuation_rate`` (share of objects continuing a track) and node counts.
    """
    w, h = frame_size
    labels: list[str] = []
    types, frames, boxes, feats, scores = [], [], [], [], []
    edges: list[Tensor] = []
    etypes: list[Tensor] = []
    feat_dim = next((d.features.shape[1] for d in detections if d.features is not None and len(d)), 0)

    def add(lbl: list[str], nt: NodeType, t: int, bx: Tensor | None, sc: Tensor, ft: Tensor | None) -> Tensor:
        n0, n = len(labels), len(lbl)
        labels.extend(lbl)
        types.append(torch.full((n,), int(nt), dtype=torch.long))
        frames.append(torch.full((n,), t, dtype=torch.long))
        boxes.append(bx if bx is not None else torch.zeros(n, 4))
        scores.append(sc.float().reshape(-1))
        feats.append(ft if ft is not None else torch.zeros(n, feat_dim))
        return torch.arange(n0, n0 + n)

    for t, det in enumerate(detections):
        if len(det) == 0:
            continue
        keep = det.scores.argsort(descending=True)[:max_objects].sort().values
        det = Detections(det.boxes[keep].float(), [det.labels[i] for i in keep.tolist()], det.scores[keep],
                         None if det.features is None else det.features[keep].float())
        b = det.boxes.clone()
        b[:, 0::2] = b[:, 0::2].clamp(0, w)
        b[:, 1::2] = b[:, 1::2].clamp(0, h)
        ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        if not bool(ok.all()):
            idx = ok.nonzero().flatten()
            det = Detections(b[idx], [det.labels[i] for i in idx.tolist()], det.scores[idx],
                             None if det.features is None else det.features[idx])
            b = det.boxes
        if len(det) == 0:
            continue
        det = Detections(b, det.labels, det.scores, det.features)
        obj_ids = add(det.labels, NodeType.OBJECT, t, b, det.scores, det.features)
        if attributes is not None:
            oi, alab, asc = attributes(det)
            if len(alab):
                aid = add(list(alab), NodeType.ATTRIBUTE, t, None, asc, None)
                edges.append(torch.stack([obj_ids[oi], aid]))
                etypes.append(torch.full((len(alab),), int(EdgeType.OBJ_ATTR)))
        if relations is not None and len(det) > 1:
            pairs, rlab, rsc = relations(det, frame_size)
            if len(rlab):
                rid = add(list(rlab), NodeType.RELATION, t, None, rsc, None)
                edges.append(torch.cat([torch.stack([obj_ids[pairs[:, 0]], rid]),
                                        torch.stack([rid, obj_ids[pairs[:, 1]]])], 1))
                etypes.append(torch.cat([torch.full((len(rlab),), int(EdgeType.SUBJ_PRED)),
                                         torch.full((len(rlab),), int(EdgeType.PRED_OBJ))]))
    n = len(labels)
    node_type = torch.cat(types) if n else torch.zeros(0, dtype=torch.long)
    frame = torch.cat(frames) if n else torch.zeros(0, dtype=torch.long)
    box = torch.cat(boxes) if n else torch.zeros(0, 4)
    vocab = {s: i for i, s in enumerate(dict.fromkeys(labels))}
    label_ids = torch.tensor([vocab[s] for s in labels], dtype=torch.long)
    ti, stats = temporal_edges(label_ids, frame, box, node_type == NodeType.OBJECT, gamma)
    meta = {**stats, "objects": int((node_type == NodeType.OBJECT).sum()) if n else 0, "gamma_d": gamma}
    return DynamicSceneGraph(
        labels, node_type, frame, box, timestamps, frame_size,
        torch.cat(edges, 1) if edges else torch.zeros(2, 0, dtype=torch.long),
        torch.cat(etypes) if etypes else torch.zeros(0, dtype=torch.long), ti,
        torch.cat(feats) if n and feat_dim else None, torch.cat(scores) if n else None, meta)

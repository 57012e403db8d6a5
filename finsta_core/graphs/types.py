"""Per-sample scene-graph types (paper section 3): textual (TSG), dynamic (DSG) and holistic (HSG).

These are the contract between scene-graph *producers* (``finsta_core.sg`` parsers and builders, the
synthetic benchmark renderer) and the *consumer* (the Finsta model, which collates many of them into
one disjoint graph per encoder). All graphs are edge lists; nodes are typed; every tensor is on CPU.

Conventions
-----------
* ``edge_index`` is ``[2, E]`` long, row 0 = source ``j``, row 1 = target ``i`` (messages flow j -> i).
* Edges are stored once, in their semantic direction (subject -> predicate -> object,
  object -> attribute, predicate -> adverb). Reverse edges and self loops are added by the encoders.
* Boxes are ``(x1, y1, x2, y2)`` in pixels of the original frame (``frame_size = (width, height)``);
  only object nodes carry boxes, other rows are zeros.
* Timestamps are raw seconds of each keyframe in the source video (sec 3.1 keeps them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import torch
from torch import Tensor


class NodeType(IntEnum):
    """Node kinds shared by TSG and DSG (sec 3.1-3.2)."""

    OBJECT = 0
    ATTRIBUTE = 1  # attribute of an object ("red", "two")
    RELATION = 2  # predicate / relation node ("sit down on", "left of")
    ADVERB = 3  # adverbial modifier of a predicate ("quickly"): the paper's TSG retrofit


class EdgeType(IntEnum):
    """Semantic edge kinds. Encoders add reverse types (``+ NUM_EDGE_TYPES``) and a self type."""

    OBJ_ATTR = 0  # object -> attribute
    SUBJ_PRED = 1  # subject object -> predicate
    PRED_OBJ = 2  # predicate -> object
    PRED_ADV = 3  # predicate -> adverb attribute
    TEMPORAL = 4  # DSG node in keyframe t-1 -> same entity in keyframe t (Eq 1)
    CROSS = 5  # TSG object -> DSG object, first occurrence of a track (Eq 7)


NUM_NODE_TYPES = len(NodeType)
NUM_EDGE_TYPES = len(EdgeType)

# Which (source type, target type) pairs each intra-graph edge type may connect.
_EDGE_ENDPOINTS = {
    EdgeType.OBJ_ATTR: (NodeType.OBJECT, NodeType.ATTRIBUTE),
    EdgeType.SUBJ_PRED: (NodeType.OBJECT, NodeType.RELATION),
    EdgeType.PRED_OBJ: (NodeType.RELATION, NodeType.OBJECT),
    EdgeType.PRED_ADV: (NodeType.RELATION, NodeType.ADVERB),
}


class SceneGraphError(ValueError):
    """A malformed scene graph; the message names the graph (``where``) and the offending record."""


def _edges(x: Any) -> Tensor:
    t = torch.as_tensor(x if x is not None else [], dtype=torch.long)
    return t.reshape(2, -1) if t.numel() else torch.zeros(2, 0, dtype=torch.long)


def _check_edges(where: str, name: str, edge_index: Tensor, edge_type: Tensor | None, n: int) -> None:
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise SceneGraphError(f"{where}: {name} must be [2, E], got {tuple(edge_index.shape)}")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= n):
        bad = int(((edge_index < 0) | (edge_index >= n)).any(0).nonzero()[0])
        raise SceneGraphError(
            f"{where}: {name} edge {bad} = {edge_index[:, bad].tolist()} points outside the {n} nodes"
        )
    if edge_type is not None and edge_type.shape != (edge_index.shape[1],):
        raise SceneGraphError(f"{where}: {name} has {edge_index.shape[1]} edges but {edge_type.numel()} types")


def _check_endpoint_types(where: str, edge_index: Tensor, edge_type: Tensor, node_type: Tensor) -> None:
    for et, (st, tt) in _EDGE_ENDPOINTS.items():
        sel = (edge_type == et).nonzero().flatten()
        if sel.numel() == 0:
            continue
        ok = (node_type[edge_index[0, sel]] == st) & (node_type[edge_index[1, sel]] == tt)
        if not bool(ok.all()):
            k = int(sel[(~ok).nonzero()[0]])
            raise SceneGraphError(
                f"{where}: edge {k} of type {et.name} links {NodeType(int(node_type[edge_index[0, k]])).name}"
                f" -> {NodeType(int(node_type[edge_index[1, k]])).name}, expected {st.name} -> {tt.name}"
            )


@dataclass
class TextualSceneGraph:
    """TSG of one caption (sec 3.2, Eqs 5-6: ``G^T = (V^T; E^T)``, ``v_i^T = (c_i)``): objects, attributes,
    predicates (every predicate is a node) and adverb attributes of predicates.

    Attributes:
        caption: the source text.
        labels: ``N`` node labels (lemmatised phrases, e.g. "sit down on").
        node_type: ``[N]`` long, values of :class:`NodeType`.
        edge_index: ``[2, E]`` long, semantic direction.
        edge_type: ``[E]`` long, values of :class:`EdgeType` (OBJ_ATTR, SUBJ_PRED, PRED_OBJ, PRED_ADV).
        spans: ``[N, 2]`` long character offsets ``[start, end)`` of each node's words in ``caption``
            (``-1, -1`` when a node has no surface words); used to pool host token states (sec 5.2).
    """

    caption: str
    labels: list[str]
    node_type: Tensor
    edge_index: Tensor
    edge_type: Tensor
    spans: Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node_type = torch.as_tensor(self.node_type, dtype=torch.long).reshape(-1)
        self.edge_index = _edges(self.edge_index)
        self.edge_type = torch.as_tensor(self.edge_type, dtype=torch.long).reshape(-1)
        self.spans = torch.as_tensor(self.spans, dtype=torch.long).reshape(-1, 2)

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    def validate(self, where: str = "TSG") -> TextualSceneGraph:
        """Check shapes, index ranges, edge endpoint types and spans; raise :class:`SceneGraphError`."""
        n = self.num_nodes
        if n == 0:
            raise SceneGraphError(f"{where}: empty graph (caption {self.caption!r} produced no nodes)")
        if self.node_type.shape != (n,) or self.spans.shape != (n, 2):
            raise SceneGraphError(
                f"{where}: {n} labels but node_type {tuple(self.node_type.shape)}, spans {tuple(self.spans.shape)}"
            )
        if self.node_type.min() < 0 or self.node_type.max() >= NUM_NODE_TYPES:
            raise SceneGraphError(f"{where}: node_type values must lie in [0, {NUM_NODE_TYPES})")
        _check_edges(where, "edge_index", self.edge_index, self.edge_type, n)
        _check_endpoint_types(where, self.edge_index, self.edge_type, self.node_type)
        has = self.spans[:, 0] >= 0
        bad = has & ((self.spans[:, 1] <= self.spans[:, 0]) | (self.spans[:, 1] > len(self.caption)))
        if bool(bad.any()):
            k = int(bad.nonzero()[0])
            raise SceneGraphError(f"{where}: node {k} ({self.labels[k]!r}) span {self.spans[k].tolist()} "
                                  f"is not inside the caption of length {len(self.caption)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tsg", "caption": self.caption, "labels": list(self.labels), "node_type": self.node_type,
                "edge_index": self.edge_index, "edge_type": self.edge_type, "spans": self.spans,
                "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextualSceneGraph:
        return cls(d["caption"], list(d["labels"]), d["node_type"], d["edge_index"], d["edge_type"],
                   d["spans"], dict(d.get("meta", {})))


@dataclass
class DynamicSceneGraph:
    """DSG of one video (sec 3.1, Eqs 2-4): per keyframe ``G_t^D`` object, attribute and relation nodes
    ``v_i = (f_i, c_i, b_i, τ)`` (Eq 3), plus temporal coreference edges ``E_{t-1 -> t}`` between consecutive
    keyframes (Eqs 1, 4).

    Attributes:
        labels: ``N`` node labels.
        node_type: ``[N]`` long (:class:`NodeType`; ADVERB is not used in a DSG).
        frame: ``[N]`` long keyframe index in ``[0, T)``.
        boxes: ``[N, 4]`` float ``(x1, y1, x2, y2)`` pixels; rows of non-object nodes are ignored.
        timestamps: ``[T]`` float raw seconds of each keyframe (non-decreasing).
        frame_size: ``(width, height)`` of the source frames in pixels.
        edge_index / edge_type: intra-keyframe edges ``[2, E]`` / ``[E]``; both ends in one keyframe.
        temporal_index: ``[2, E_t]`` long, node in keyframe ``t-1`` -> node in keyframe ``t``; one-to-one
            (each node has at most one predecessor and one successor), so tracks are chains.
        features: optional ``[N, F]`` float detector features (object nodes; zeros elsewhere).
        scores: optional ``[N]`` float detector / classifier confidences.
    """

    labels: list[str]
    node_type: Tensor
    frame: Tensor
    boxes: Tensor
    timestamps: Tensor
    frame_size: tuple[int, int]
    edge_index: Tensor
    edge_type: Tensor
    temporal_index: Tensor
    features: Tensor | None = None
    scores: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node_type = torch.as_tensor(self.node_type, dtype=torch.long).reshape(-1)
        self.frame = torch.as_tensor(self.frame, dtype=torch.long).reshape(-1)
        self.boxes = torch.as_tensor(self.boxes, dtype=torch.float32).reshape(-1, 4)
        self.timestamps = torch.as_tensor(self.timestamps, dtype=torch.float32).reshape(-1)
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        self.edge_index = _edges(self.edge_index)
        self.edge_type = torch.as_tensor(self.edge_type, dtype=torch.long).reshape(-1)
        self.temporal_index = _edges(self.temporal_index)
        if self.features is not None:
            self.features = torch.as_tensor(self.features, dtype=torch.float32)
        if self.scores is not None:
            self.scores = torch.as_tensor(self.scores, dtype=torch.float32).reshape(-1)

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    @property
    def num_frames(self) -> int:
        return int(self.timestamps.numel())

    def validate(self, where: str = "DSG") -> DynamicSceneGraph:
        """Check shapes, ranges, boxes (finite, inside the frame), intra-frame edges and chain tracks."""
        n, t = self.num_nodes, self.num_frames
        if n == 0 or t == 0:
            raise SceneGraphError(f"{where}: empty graph ({n} nodes, {t} keyframes)")
        for name, x, shape in (("node_type", self.node_type, (n,)), ("frame", self.frame, (n,)),
                               ("boxes", self.boxes, (n, 4))):
            if tuple(x.shape) != shape:
                raise SceneGraphError(f"{where}: {name} has shape {tuple(x.shape)}, expected {shape}")
        if self.frame.min() < 0 or self.frame.max() >= t:
            k = int(((self.frame < 0) | (self.frame >= t)).nonzero()[0])
            raise SceneGraphError(f"{where}: node {k} frame {int(self.frame[k])} outside [0, {t})")
        if not bool(torch.isfinite(self.timestamps).all()) or bool((self.timestamps.diff() < 0).any()):
            raise SceneGraphError(f"{where}: timestamps must be finite and non-decreasing")
        obj = self.node_type == NodeType.OBJECT
        w, h = self.frame_size
        b = self.boxes[obj]
        bad = ~torch.isfinite(b).all(1) | (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
        bad |= (b[:, 0] < -1) | (b[:, 1] < -1) | (b[:, 2] > w + 1) | (b[:, 3] > h + 1)
        if bool(bad.any()):
            k = int(obj.nonzero().flatten()[bad.nonzero()[0]])
            raise SceneGraphError(f"{where}: object node {k} ({self.labels[k]!r}) box {self.boxes[k].tolist()} "
                                  f"is NaN, empty or outside the {w}x{h} frame")
        _check_edges(where, "edge_index", self.edge_index, self.edge_type, n)
        _check_endpoint_types(where, self.edge_index, self.edge_type, self.node_type)
        cross = self.frame[self.edge_index[0]] != self.frame[self.edge_index[1]]
        if bool(cross.any()):
            k = int(cross.nonzero()[0])
            raise SceneGraphError(f"{where}: edge {k} {self.edge_index[:, k].tolist()} crosses keyframes; "
                                  "only temporal_index may link keyframes")
        _check_edges(where, "temporal_index", self.temporal_index, None, n)
        if self.temporal_index.numel():
            src, dst = self.temporal_index
            if bool((self.frame[dst] != self.frame[src] + 1).any()):
                raise SceneGraphError(f"{where}: temporal edges must link keyframe t-1 to keyframe t")
            if src.unique().numel() != src.numel() or dst.unique().numel() != dst.numel():
                raise SceneGraphError(f"{where}: temporal edges must be one-to-one (tracks are chains)")
        if self.features is not None and self.features.shape[0] != n:
            raise SceneGraphError(f"{where}: features have {self.features.shape[0]} rows for {n} nodes")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "dsg", "labels": list(self.labels), "node_type": self.node_type, "frame": self.frame,
                "boxes": self.boxes, "timestamps": self.timestamps, "frame_size": list(self.frame_size),
                "edge_index": self.edge_index, "edge_type": self.edge_type,
                "temporal_index": self.temporal_index, "features": self.features, "scores": self.scores,
                "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DynamicSceneGraph:
        return cls(list(d["labels"]), d["node_type"], d["frame"], d["boxes"], d["timestamps"],
                   tuple(d["frame_size"]), d["edge_index"], d["edge_type"], d["temporal_index"],
                   d.get("features"), d.get("scores"), dict(d.get("meta", {})))


@dataclass
class HolisticSceneGraph:
    """HSG (sec 3.3, Eqs 8-10): a TSG (frame ``G_0^C``, Eq 9) and a DSG (frames ``G_1..t^C``) plus cross-modal
    coreference edges (Eqs 7, 10).

    Attributes:
        tsg, dsg: the two graphs (node ids are local to each).
        cross_index: ``[2, E_c]`` long, row 0 = TSG object node, row 1 = DSG object node (first
            occurrence of its track).
        cross_score: ``[E_c]`` float calibrated link scores ``a^C`` in [0, 1].
        sample_id: id of the sample the graphs describe (used in error messages and the cache index).
    """

    tsg: TextualSceneGraph
    dsg: DynamicSceneGraph
    cross_index: Tensor
    cross_score: Tensor | None = None
    sample_id: str = ""

    def __post_init__(self) -> None:
        self.cross_index = _edges(self.cross_index)
        if self.cross_score is None:
            self.cross_score = torch.ones(self.cross_index.shape[1])
        self.cross_score = torch.as_tensor(self.cross_score, dtype=torch.float32).reshape(-1)

    def validate(self) -> HolisticSceneGraph:
        where = f"sample {self.sample_id!r}" if self.sample_id else "HSG"
        self.tsg.validate(f"{where} TSG")
        self.dsg.validate(f"{where} DSG")
        ci = self.cross_index
        if ci.numel():
            if ci[0].min() < 0 or ci[0].max() >= self.tsg.num_nodes or ci[1].min() < 0 \
                    or ci[1].max() >= self.dsg.num_nodes:
                raise SceneGraphError(f"{where}: cross_index points outside the TSG or DSG nodes")
            if bool((self.tsg.node_type[ci[0]] != NodeType.OBJECT).any()) or \
                    bool((self.dsg.node_type[ci[1]] != NodeType.OBJECT).any()):
                raise SceneGraphError(f"{where}: cross-modal edges must link object nodes")
        if self.cross_score.shape != (ci.shape[1],) or not bool(torch.isfinite(self.cross_score).all()):
            raise SceneGraphError(f"{where}: cross_score must be finite with one value per cross edge")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "hsg", "sample_id": self.sample_id, "tsg": self.tsg.to_dict(), "dsg": self.dsg.to_dict(),
                "cross_index": self.cross_index, "cross_score": self.cross_score}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HolisticSceneGraph:
        return cls(TextualSceneGraph.from_dict(d["tsg"]), DynamicSceneGraph.from_dict(d["dsg"]),
                   d["cross_index"], d.get("cross_score"), d.get("sample_id", ""))

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically with ``torch.save`` (tensors, strings and lists only)."""
        save_graph(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HolisticSceneGraph:
        return cls.from_dict(load_graph(path))


def save_graph(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """Atomically write a graph dict (``to_dict()`` output, or a list of them) to ``path``."""
    from finsta_core.io import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_graph(path: str | os.PathLike) -> Any:
    """Read a file written by :func:`save_graph` (``weights_only=True``: no code is unpickled)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"scene-graph file {path} does not exist (build it with `harness sg parse`)")
    return torch.load(path, map_location="cpu", weights_only=True)


def box_centers(boxes: Tensor, frame_size: tuple[int, int]) -> Tensor:
    """``[N, 4]`` xyxy pixel boxes -> ``[N, 2]`` centres normalised by frame width and height."""
    w, h = frame_size
    scale = boxes.new_tensor([w, h]).clamp_min(1.0)
    return ((boxes[:, :2] + boxes[:, 2:]) / 2) / scale


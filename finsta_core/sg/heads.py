"""Default trainable relation and attribute classifiers for the DSG (paper sec 3.1).

The paper uses MOTIFS for relations and a bottom-up-attention attribute classifier. Neither ships weights
offline, so the default is a small head on detector region features that a user trains on their own
annotations (Visual Genome, Action Genome) with :meth:`PairRelationHead.loss` / :meth:`AttributeHead.loss`;
any model satisfying the :mod:`finsta_core.sg.dsg` protocols can replace it.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from finsta_core.sg.dsg import Detections


def pair_geometry(boxes: Tensor, pairs: Tensor, frame_size: tuple[int, int]) -> Tensor:
    """``[P, 9]`` box-pair geometry: normalised subject and object boxes and log-scale deltas."""
    w, h = frame_size
    scale = boxes.new_tensor([w, h, w, h]).clamp_min(1.0)
    s, o = boxes[pairs[:, 0]], boxes[pairs[:, 1]]
    sw, sh = (s[:, 2] - s[:, 0]).clamp_min(1), (s[:, 3] - s[:, 1]).clamp_min(1)
    ow, oh = (o[:, 2] - o[:, 0]).clamp_min(1), (o[:, 3] - o[:, 1]).clamp_min(1)
    d = torch.stack([(o[:, 0] - s[:, 0]) / sw, (o[:, 1] - s[:, 1]) / sh, torch.log(ow / sw), torch.log(oh / sh)], 1)
    return torch.cat([s / scale, o / scale, d], 1)[:, :9]


class PairRelationHead(nn.Module):
    """MLP on ``[f_subj, f_obj, geometry]`` -> logits over ``["__none__", *relations]``.

    Args:
        feat_dim: detector feature width ``F``.
        relations: relation vocabulary (index 0 is reserved for "no relation").
    """

    def __init__(self, feat_dim: int, relations: list[str], hidden: int = 256) -> None:
        super().__init__()
        self.relations = ["__none__", *relations]
        self.mlp = nn.Sequential(nn.Linear(2 * feat_dim + 9, hidden), nn.ReLU(), nn.Linear(hidden, len(self.relations)))

    def forward(self, feats: Tensor, boxes: Tensor, pairs: Tensor, frame_size: tuple[int, int]) -> Tensor:
        """``feats [n, F]``, ``boxes [n, 4]``, ``pairs [P, 2]`` -> logits ``[P, R + 1]``."""
        x = torch.cat([feats[pairs[:, 0]], feats[pairs[:, 1]], pair_geometry(boxes, pairs, frame_size)], 1)
        return self.mlp(x)

    def loss(self, feats: Tensor, boxes: Tensor, pairs: Tensor, target: Tensor, frame_size: tuple[int, int]) -> Tensor:
        """Cross-entropy against ``target [P]`` (0 = no relation)."""
        return nn.functional.cross_entropy(self.forward(feats, boxes, pairs, frame_size), target)


class AttributeHead(nn.Module):
    """MLP on region features -> multi-label attribute logits ``[n, A]``."""

    def __init__(self, feat_dim: int, attributes: list[str], hidden: int = 256) -> None:
        super().__init__()
        self.attributes = list(attributes)
        self.mlp = nn.Sequential(nn.Linear(feat_dim, hidden), nn.ReLU(), nn.Linear(hidden, len(self.attributes)))

    def forward(self, feats: Tensor) -> Tensor:
        return self.mlp(feats)

    def loss(self, feats: Tensor, target: Tensor) -> Tensor:
        """Binary cross-entropy against a ``[n, A]`` 0/1 target."""
        return nn.functional.binary_cross_entropy_with_logits(self.forward(feats), target.float())


def all_pairs(n: int) -> Tensor:
    """``[n (n - 1), 2]`` ordered pairs of distinct indices."""
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    m = i != j
    return torch.stack([i[m], j[m]], 1)


class HeadRelationClassifier:
    """:class:`~finsta_core.sg.dsg.RelationClassifier` around a :class:`PairRelationHead`: keeps each pair's
    best non-"none" relation when its probability exceeds ``threshold``, at most ``top_k`` per keyframe."""

    def __init__(self, head: PairRelationHead, threshold: float = 0.5, top_k: int = 20) -> None:
        self.head, self.threshold, self.top_k = head.eval(), threshold, top_k

    @torch.no_grad()
    def __call__(self, det: Detections, frame_size: tuple[int, int]) -> tuple[Tensor, list[str], Tensor]:
        if det.features is None or len(det) < 2:
            return torch.zeros(0, 2, dtype=torch.long), [], torch.zeros(0)
        pairs = all_pairs(len(det))
        prob = self.head(det.features, det.boxes, pairs, frame_size).softmax(-1)
        score, rel = prob[:, 1:].max(-1)
        keep = (score > self.threshold).nonzero().flatten()
        keep = keep[score[keep].argsort(descending=True)[: self.top_k]]
        return pairs[keep], [self.head.relations[int(r) + 1] for r in rel[keep]], score[keep]


class HeadAttributeClassifier:
    """:class:`~finsta_core.sg.dsg.AttributeClassifier` around an :class:`AttributeHead` (sigmoid >
    ``threshold``, at most ``per_object`` attributes per object)."""

    def __init__(self, head: AttributeHead, threshold: float = 0.5, per_object: int = 3) -> None:
        self.head, self.threshold, self.per_object = head.eval(), threshold, per_object

    @torch.no_grad()
    def __call__(self, det: Detections) -> tuple[Tensor, list[str], Tensor]:
        if det.features is None or len(det) == 0:
            return torch.zeros(0, dtype=torch.long), [], torch.zeros(0)
        prob = self.head(det.features).sigmoid()
        k = min(self.per_object, prob.shape[1])
        top, idx = prob.topk(k, dim=1)
        ok = top > self.threshold
        obj = torch.arange(len(det))[:, None].expand_as(idx)[ok]
        return obj, [self.head.attributes[int(a)] for a in idx[ok]], top[ok]


def save_head(head: nn.Module, path: str | os.PathLike) -> None:
    """Save a head (weights + vocabulary) atomically."""
    vocab = head.relations[1:] if isinstance(head, PairRelationHead) else head.attributes
    kind = "relation" if isinstance(head, PairRelationHead) else "attribute"
    first = head.mlp[0]
    feat = (first.in_features - 9) // 2 if kind == "relation" else first.in_features
    tmp = f"{os.fspath(path)}.tmp"
    torch.save({"kind": kind, "vocab": vocab, "feat_dim": feat, "hidden": first.out_features,
                "state_dict": head.state_dict()}, tmp)
    os.replace(tmp, path)


def load_head(path: str | os.PathLike) -> PairRelationHead | AttributeHead:
    """Load a head written by :func:`save_head`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"classifier head checkpoint {path} does not exist (train one with "
                                "PairRelationHead.loss / AttributeHead.loss and save it with save_head)")
    d = torch.load(path, map_location="cpu", weights_only=True)
    cls = PairRelationHead if d["kind"] == "relation" else AttributeHead
    head = cls(d["feat_dim"], d["vocab"], d["hidden"])
    head.load_state_dict(d["state_dict"])
    return head

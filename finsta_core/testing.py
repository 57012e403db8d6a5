"""Synthetic scene graphs and host outputs for tests, benchmarks and demos (no data, no network).

``random_hsg`` builds one video of ``num_frames`` keyframes with ``num_objects`` tracked entities moving on
random walks (one of them can be static), one attribute per object, relations between consecutive entities
(stable over time) and a caption TSG describing some of the entities (subject - predicate - object, an
adverb, attributes) with character spans, plus cross-modal edges to the first occurrence of each entity.
``random_host_outputs`` builds matching :class:`HostOutputs` (word-level text tokens with char spans, patch
tokens on a grid, per-frame pooled outputs with frame times).
"""

from __future__ import annotations

import torch

from finsta_core.graphs.types import (
    DynamicSceneGraph,
    EdgeType,
    HolisticSceneGraph,
    NodeType,
    TextualSceneGraph,
)
from finsta_core.interface import EncoderOutput, HostOutputs, TokenStates

NOUNS = ["dog", "cat", "man", "woman", "ball", "car", "horse", "child", "chair", "table", "bike", "bird"]
ATTRS = ["red", "small", "old", "young", "white", "black", "big", "wooden"]
VERBS = ["chase", "hold", "ride", "sit down on", "kick", "push", "watch", "follow"]
ADVERBS = ["quickly", "slowly", "hastily", "gently"]


def random_hsg(seed: int = 0, num_frames: int = 16, num_objects: int = 4, frame_size: tuple[int, int] = (320, 240),
               feature_dim: int | None = None, dsg_label_prefix: str = "", sample_id: str | None = None,
               caption_objects: int = 3) -> HolisticSceneGraph:
    """One synthetic HSG (about ``3 * num_objects - 1`` DSG nodes per keyframe)."""
    g = torch.Generator().manual_seed(seed)
    k = num_objects
    w, h = frame_size
    nouns = [NOUNS[int(i)] for i in torch.randperm(len(NOUNS), generator=g)[:k]]
    attrs = [ATTRS[int(i)] for i in torch.randint(len(ATTRS), (k,), generator=g)]
    verbs = [VERBS[int(i)] for i in torch.randint(len(VERBS), (k - 1,), generator=g)]
    size = torch.rand(k, 2, generator=g) * 0.2 + 0.1
    pos = torch.rand(k, 2, generator=g) * (1 - size) + size / 2
    vel = (torch.rand(k, 2, generator=g) - 0.5) * 0.06
    vel[0] = 0.0  # one static entity
    labels, ntype, frame, boxes, ei, et, ti = [], [], [], [], [], [], []
    prev_obj: list[int] = []
    for t in range(num_frames):
        p = (pos + vel * t).clamp(size / 2, 1 - size / 2)
        base = len(labels)
        obj_ids = list(range(base, base + k))
        for i in range(k):
            labels.append(dsg_label_prefix + nouns[i])
            ntype.append(NodeType.OBJECT)
            frame.append(t)
            boxes.append([(p[i, 0] - size[i, 0] / 2) * w, (p[i, 1] - size[i, 1] / 2) * h,
                          (p[i, 0] + size[i, 0] / 2) * w, (p[i, 1] + size[i, 1] / 2) * h])
        for i in range(k):
            labels.append(dsg_label_prefix + attrs[i])
            ntype.append(NodeType.ATTRIBUTE)
            frame.append(t)
            boxes.append([0.0] * 4)
            ei.append([obj_ids[i], len(labels) - 1])
            et.append(EdgeType.OBJ_ATTR)
        for i in range(k - 1):
            labels.append(dsg_label_prefix + verbs[i])
            ntype.append(NodeType.RELATION)
            frame.append(t)
            boxes.append([0.0] * 4)
            r = len(labels) - 1
            ei += [[obj_ids[i], r], [r, obj_ids[i + 1]]]
            et += [EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ]
        if prev_obj:
            ti += [[a, b] for a, b in zip(prev_obj, obj_ids)]
        prev_obj = obj_ids
    n = len(labels)
    times = torch.arange(num_frames, dtype=torch.float32) * 0.5
    feats = torch.randn(n, feature_dim, generator=g) if feature_dim else None
    dsg = DynamicSceneGraph(labels, ntype, frame, boxes, times, frame_size,
                            torch.tensor(ei).t() if ei else None, et, torch.tensor(ti).t() if ti else None, feats)
    # TSG: "the <attr> <noun> <verb> the <attr> <noun> <adverb>" chains over the first caption_objects entities
    m = min(caption_objects, k)
    words: list[tuple[str, NodeType | None]] = []
    t_labels, t_type, t_spans, t_ei, t_et, cross = [], [], [], [], [], []
    caption = ""

    def add(text: str, kind: NodeType) -> int:
        nonlocal caption
        start = len(caption) + (1 if caption else 0)
        caption = (caption + " " + text) if caption else text
        t_labels.append(text)
        t_type.append(kind)
        t_spans.append([start, start + len(text)])
        return len(t_labels) - 1

    obj_node: dict[int, int] = {}
    for i in range(m):
        a = add(attrs[i], NodeType.ATTRIBUTE)
        o = add(nouns[i], NodeType.OBJECT)
        obj_node[i] = o
        t_ei.append([o, a])
        t_et.append(EdgeType.OBJ_ATTR)
        cross.append([o, i])  # DSG object i of keyframe 0
        if i > 0:
            pass
    dynamic = [False] * len(t_labels)
    for i in range(m - 1):
        r = add(verbs[i], NodeType.RELATION)
        adv = add(ADVERBS[int(torch.randint(len(ADVERBS), (1,), generator=g))], NodeType.ADVERB)
        t_ei += [[obj_node[i], r], [r, obj_node[i + 1]], [r, adv]]
        t_et += [EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ, EdgeType.PRED_ADV]
        dynamic += [True, False]
    del words
    tsg = TextualSceneGraph(caption, t_labels, t_type, torch.tensor(t_ei).t() if t_ei else None, t_et, t_spans,
                            {"dynamic": dynamic})
    return HolisticSceneGraph(tsg, dsg, torch.tensor(cross).t(), torch.ones(len(cross)),
                              sample_id if sample_id is not None else f"synth-{seed}")


def random_host_outputs(graphs: list[HolisticSceneGraph], widths: dict[str, int], frames: int = 4,
                        grid: tuple[int, int] = (4, 4), seed: int = 0, requires_grad: bool = True) -> HostOutputs:
    """Host outputs matching ``graphs``: word tokens of each caption, ``frames x grid`` patch tokens."""
    g = torch.Generator().manual_seed(seed)
    b = len(graphs)
    caps = [x.tsg.caption for x in graphs]
    spans = []
    for c in caps:
        s, pos = [], 0
        for word in c.split(" "):
            s.append([pos, pos + len(word)])
            pos += len(word) + 1
        spans.append(s)
    lt = max(len(s) for s in spans) + 1  # + a [CLS] token without span
    cs = torch.full((b, lt, 2), -1, dtype=torch.long)
    tmask = torch.zeros(b, lt, dtype=torch.bool)
    for i, s in enumerate(spans):
        cs[i, 1:len(s) + 1] = torch.tensor(s)
        tmask[i, : len(s) + 1] = True
    rows, cols = grid
    lv = frames * rows * cols
    fi = torch.arange(frames).repeat_interleave(rows * cols).expand(b, lv)
    rc = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    rc = rc.repeat(frames, 1).expand(b, lv, 2)
    dur = torch.tensor([float(x.dsg.timestamps[-1]) for x in graphs])
    ft = torch.linspace(0, 1, frames).unsqueeze(0) * dur.unsqueeze(1)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(requires_grad)

    out = HostOutputs()
    if "text" in widths:
        d = widths["text"]
        out.text = EncoderOutput(TokenStates(rnd(b, lt, d), tmask, cs), rnd(b, d))
    if "video" in widths:
        d = widths["video"]
        out.video = EncoderOutput(TokenStates(rnd(b, lv, d), torch.ones(b, lv, dtype=torch.bool), None, fi, rc, grid),
                                  rnd(b, frames, d), ft)
    if "cross" in widths:
        d = widths["cross"]
        cspan = torch.cat([cs, torch.full((b, lv, 2), -1, dtype=torch.long)], 1)
        cfi = torch.cat([torch.full((b, lt), -1, dtype=torch.long), fi], 1)
        crc = torch.cat([torch.full((b, lt, 2), -1, dtype=torch.long), rc], 1)
        mask = torch.cat([tmask, torch.ones(b, lv, dtype=torch.bool)], 1)
        out.cross = EncoderOutput(TokenStates(rnd(b, lt + lv, d), mask, cspan, cfi, crc, grid), rnd(b, frames, d), ft)
    out.losses = {"vla": torch.zeros((), requires_grad=requires_grad)}
    return out

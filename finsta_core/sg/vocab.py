"""Vocabulary filtering (paper sec 7.1 "Scene Graph Parsing" and Table 13).

TSG: drop object, relation and attribute (incl. adverb) nodes whose label occurs fewer than ``tsg_min_count``
(5) times in the parsed corpus. DSG: keep labels seen more than ``dsg_min_count`` (500) times. Counts are per
node type; dropping a node drops its edges (cross-modal links too).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable

import torch

from finsta_core.graphs.types import HolisticSceneGraph, NodeType
from finsta_core.sg.ops import hsg_subgraph

_KINDS = {NodeType.OBJECT: "object", NodeType.RELATION: "relation", NodeType.ATTRIBUTE: "attribute",
          NodeType.ADVERB: "attribute"}


class VocabularyFilter:
    """Label counts per (graph side, node kind) and the filter they imply."""

    def __init__(self, tsg_min_count: int = 5, dsg_min_count: int = 501) -> None:
        self.tsg_min_count, self.dsg_min_count = tsg_min_count, dsg_min_count
        self.counts: dict[str, Counter] = {f"{side}/{k}": Counter() for side in ("tsg", "dsg")
                                           for k in ("object", "relation", "attribute")}

    def update(self, graphs: Iterable[HolisticSceneGraph]) -> VocabularyFilter:
        for g in graphs:
            for side, part in (("tsg", g.tsg), ("dsg", g.dsg)):
                for lab, nt in zip(part.labels, part.node_type.tolist()):
                    self.counts[f"{side}/{_KINDS[NodeType(nt)]}"][lab] += 1
        return self

    def merge(self, other: VocabularyFilter) -> VocabularyFilter:
        for k, c in other.counts.items():
            self.counts[k].update(c)
        return self

    def kept(self, side: str, kind: str) -> set[str]:
        m = self.tsg_min_count if side == "tsg" else self.dsg_min_count
        return {lab for lab, n in self.counts[f"{side}/{kind}"].items() if n >= m}

    def apply(self, g: HolisticSceneGraph) -> HolisticSceneGraph:
        """Drop rare-label nodes; a graph side that would become empty keeps its most frequent node."""
        masks = []
        for side, part in (("tsg", g.tsg), ("dsg", g.dsg)):
            kept = {k: self.kept(side, k) for k in ("object", "relation", "attribute")}
            keep = torch.tensor([lab in kept[_KINDS[NodeType(nt)]]
                                 for lab, nt in zip(part.labels, part.node_type.tolist())], dtype=torch.bool)
            if part.num_nodes and not bool(keep.any()):
                freq = [self.counts[f"{side}/{_KINDS[NodeType(nt)]}"][lab]
                        for lab, nt in zip(part.labels, part.node_type.tolist())]
                keep[int(torch.tensor(freq).argmax())] = True
            masks.append(keep)
        return hsg_subgraph(g, masks[0], masks[1])

    def statistics(self) -> dict[str, dict[str, int]]:
        """Table 13: distinct labels per side and kind, before and after filtering."""
        return {k: {"distinct": len(c), "kept": len(self.kept(*k.split("/"))), "occurrences": sum(c.values())}
                for k, c in self.counts.items()}

    def format_table(self) -> str:
        st = self.statistics()
        head = "| | " + " | ".join(k for k in st) + " |"
        rows = [f"| {r} | " + " | ".join(str(st[k][r]) for k in st) + " |" for r in ("distinct", "kept")]
        return "\n".join([head, "|---" * (len(st) + 1) + "|", *rows])

    def save(self, path: str | os.PathLike) -> None:
        d = {"tsg_min_count": self.tsg_min_count, "dsg_min_count": self.dsg_min_count,
             "counts": {k: dict(c) for k, c in self.counts.items()}}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.fspath(path)) or ".", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(d, f)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> VocabularyFilter:
        with open(path) as f:
            d = json.load(f)
        out = cls(d["tsg_min_count"], d["dsg_min_count"])
        for k, c in d["counts"].items():
            out.counts[k] = Counter(c)
        return out

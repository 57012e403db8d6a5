"""Message passing over edge lists: the one place where layers gather, segment-softmax and scatter.

PyG's habit (``MessagePassing`` owns propagate / aggregate; a conv writes only ``message``): every encoder
layer in :mod:`finsta_core.nn` describes its edges as an :class:`EdgeList`, writes only its per-edge scores
(and, for the recurrent GNN, its per-edge messages) and calls :meth:`EdgeList.attend` or
:meth:`EdgeList.aggregate`. Nothing else in ``finsta_core.nn`` calls a scatter primitive.

Notation: ``N`` nodes, ``E`` directed edges ``j -> i`` (``src = j``, ``dst = i``), ``H`` heads, head width
``d_k``. Attention of a target ``i`` over its in-edges:

.. math::

    w_{ij} = \\operatorname{softmax}_{j \\in \\mathcal{N}(i)} a_{ij}, \\qquad
    \\operatorname{agg}_i = \\sum_{j \\in \\mathcal{N}(i)} w_{ij} \\, v_j

(Eq 14 / 22 / 31 softmax, the neighbour sum of Eqs 11 / 19 / 31.) A target without in-edges gets
``agg_i = 0``. Cost: O(E H d_k) time and memory, no dense ``N x N`` tensor. The softmax is max-subtracted on a
detached per-target max (a constant shift: no gradient is lost); the backend is the one chosen in
:mod:`finsta_core.graphs.scatter`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from finsta_core.graphs.scatter import scatter_mean, scatter_sum, segment_softmax


@dataclass(frozen=True)
class EdgeList:
    """Directed edges ``src[e] -> dst[e]`` (``[E]`` each) of a graph with ``n`` nodes."""

    src: Tensor
    dst: Tensor
    n: int

    @classmethod
    def of(cls, edge_index: Tensor, n: int) -> EdgeList:
        """From ``edge_index [2, E]`` (row 0 source ``j``, row 1 target ``i``)."""
        return cls(edge_index[0], edge_index[1], n)

    @property
    def num_edges(self) -> int:
        return self.src.numel()

    def sources(self, x: Tensor) -> Tensor:
        """``x_j`` per edge: ``[N, *] -> [E, *]``."""
        return x.index_select(0, self.src)

    def targets(self, x: Tensor) -> Tensor:
        """``x_i`` per edge: ``[N, *] -> [E, *]``."""
        return x.index_select(0, self.dst)

    def softmax(self, logit: Tensor) -> Tensor:
        """``w_ij = softmax_j a_ij`` over the in-edges of each target: ``[E, H] -> [E, H]``."""
        return segment_softmax(logit, self.dst, self.n)

    def aggregate(self, message: Tensor, reduce: str = "sum") -> Tensor:
        """Per-target ``sum`` or ``mean`` of per-edge messages: ``[E, *] -> [N, *]`` (no in-edges: 0)."""
        if reduce == "sum":
            return scatter_sum(message, self.dst, self.n)
        if reduce == "mean":
            return scatter_mean(message, self.dst, self.n)
        raise ValueError(f"EdgeList.aggregate: unknown reduce {reduce!r}; choose 'sum' or 'mean'")

    def attend(self, logit: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Softmax the logits over each target's in-edges and sum the weighted source values.

        Args:
            logit: ``[E, H]`` one score per edge and head. value: ``[N, H, d_k]`` per node (gathered at the
                source of each edge).
        Returns:
            ``agg [N, H, d_k]`` and the weights ``w [E, H]``.
        """
        w = self.softmax(logit)  # w_ij = softmax_j a_ij  (Eqs 14, 22, 31)
        agg = self.aggregate(self.sources(value) * w.unsqueeze(-1))  # sum_j w_ij v_j  (Eqs 11, 19, 31)
        return agg, w

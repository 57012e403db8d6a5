"""Scatter / segment primitives over edge lists (native torch; torch-scatter optional).

Every graph op in ``finsta_core`` goes through these few functions, so that a backend switch changes all
of them at once. All are O(E * d) time and memory.

* ``scatter_sum(src [E, *], index [E], n) -> [n, *]``
* ``scatter_mean`` (empty groups give 0), ``scatter_max`` (values only, empty groups give ``fill``)
* ``segment_softmax(logit [E, *], index [E], n) -> [E, *]`` softmax within each group of ``index``
* ``scatter_logsumexp(logit [E], index [E], n) -> [n]`` (empty groups give ``-inf``)

Backends (policy decided by measurement, ``docs/equations.md`` "Scatter backend"): ``"native"`` (the
default; ``index_add_`` / ``scatter_reduce_``) and ``"torch_scatter"`` (opt-in; needs the ``torch-scatter``
extension compiled against the installed torch, see ``scripts/install_scatter.sh``). ``"auto"`` (opt-in too)
picks torch-scatter on CUDA when it imports and native otherwise (PyG's own choice). On CPU torch-scatter is
slower for these graph ops (DSG encoder fwd+bwd 1.27x slower at d = 256, 1.03x at d = 768; issue 14), so
nothing selects it unless asked. The max used to stabilise softmax is computed on a detached copy: it is a
constant shift, so no gradient is lost.
"""

from __future__ import annotations

import torch
from torch import Tensor

_BACKENDS = ("native", "torch_scatter", "auto")
_backend = "native"
INSTALL_HINT = ("torch-scatter is optional (native torch is the default, and faster on CPU). To build it: "
                "`bash scripts/install_scatter.sh` (= `pip install --no-build-isolation torch-scatter`; it compiles "
                "against the installed torch for several minutes). A plain `pip install torch-scatter` or "
                "`pip install finsta[scatter]` fails: its setup.py imports torch inside pip's isolated build")


def torch_scatter_available() -> bool:
    """Whether the optional ``torch_scatter`` extension imports (it must match the torch build)."""
    try:
        import torch_scatter  # noqa: F401
    except Exception:  # ImportError, or OSError for a build against another torch version
        return False
    return True


def set_scatter_backend(name: str) -> None:
    """Select the backend for every scatter op (``native``, ``torch_scatter`` or ``auto``)."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"unknown scatter backend {name!r}; choose one of {_BACKENDS}")
    if name == "torch_scatter" and not torch_scatter_available():
        raise ImportError(f"scatter backend 'torch_scatter': torch_scatter does not import here (it must be compiled "
                          f"for torch {torch.__version__}). {INSTALL_HINT}. Or use scatter_backend='native'.")
    _backend = name


def get_scatter_backend() -> str:
    """The backend selected by :func:`set_scatter_backend` (``native`` unless changed)."""
    return _backend


def _use_ts(src: Tensor) -> bool:
    if _backend == "native":
        return False
    if _backend == "torch_scatter":
        return True
    return src.is_cuda and torch_scatter_available()


def _expand(index: Tensor, src: Tensor) -> Tensor:
    return index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)


def scatter_sum(src: Tensor, index: Tensor, n: int) -> Tensor:
    """Sum rows of ``src [E, *]`` into ``[n, *]`` by ``index [E]``."""
    if _use_ts(src):
        import torch_scatter

        return torch_scatter.scatter(src, index, dim=0, dim_size=n, reduce="sum")
    return src.new_zeros((n, *src.shape[1:])).index_add_(0, index, src)


def scatter_count(index: Tensor, n: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Group sizes ``[n]``."""
    return torch.zeros(n, dtype=dtype, device=index.device).index_add_(
        0, index, torch.ones(index.numel(), dtype=dtype, device=index.device))


def scatter_mean(src: Tensor, index: Tensor, n: int) -> Tensor:
    """Mean of rows of ``src [E, *]`` per group ``[n, *]``; empty groups are 0."""
    total = scatter_sum(src, index, n)
    cnt = scatter_count(index, n, src.dtype).clamp_min(1)
    return total / cnt.view(-1, *([1] * (src.dim() - 1)))


def scatter_max(src: Tensor, index: Tensor, n: int, fill: float = 0.0) -> Tensor:
    """Max of rows of ``src [E, *]`` per group ``[n, *]``; empty groups get ``fill``."""
    if _use_ts(src):
        import torch_scatter

        out = torch_scatter.scatter(src, index, dim=0, dim_size=n, reduce="max")
        has = scatter_count(index, n) > 0
        return torch.where(has.view(-1, *([1] * (src.dim() - 1))), out, out.new_full((), fill))
    out = src.new_full((n, *src.shape[1:]), fill)
    return out.scatter_reduce(0, _expand(index, src), src, reduce="amax", include_self=False)


def segment_softmax(logit: Tensor, index: Tensor, n: int) -> Tensor:
    """Softmax of ``logit [E, *]`` within each group of ``index [E]`` (max-subtracted, detached max)."""
    if _use_ts(logit):
        import torch_scatter.composite

        return torch_scatter.composite.scatter_softmax(logit, index, dim=0, dim_size=n)
    with torch.no_grad():
        mx = scatter_max(logit.detach(), index, n)
    ex = (logit - mx.index_select(0, index)).exp()
    den = scatter_sum(ex, index, n).index_select(0, index)
    return ex / den.clamp_min(1e-16)


def scatter_logsumexp(logit: Tensor, index: Tensor, n: int) -> Tensor:
    """``log sum exp`` of ``logit [E]`` per group ``[n]``; empty groups give ``-inf``."""
    with torch.no_grad():
        mx = scatter_max(logit.detach(), index, n, fill=0.0)
    s = scatter_sum((logit - mx.index_select(0, index)).exp(), index, n)
    return s.log() + mx


def group_pairs(q_group: Tensor, m_group: Tensor, num_groups: int) -> tuple[Tensor, Tensor]:
    """All ``(q, m)`` position pairs whose groups are equal, without a dense ``[Q, M]`` matrix.

    Args:
        q_group: ``[Q]`` group of each query. m_group: ``[M]`` group of each member.
    Returns:
        ``qi [P]`` positions into the queries and ``mi [P]`` positions into the members,
        ``P = sum_g |q in g| * |m in g|``.
    """
    dev = q_group.device
    order = torch.argsort(m_group, stable=True)
    cnt = torch.bincount(m_group, minlength=num_groups)
    start = torch.cumsum(cnt, 0) - cnt
    c = cnt.index_select(0, q_group)
    qi = torch.repeat_interleave(torch.arange(q_group.numel(), device=dev), c)
    off = torch.arange(qi.numel(), device=dev) - torch.repeat_interleave(torch.cumsum(c, 0) - c, c)
    mi = order.index_select(0, start.index_select(0, q_group).index_select(0, qi) + off)
    return qi, mi


def khop_pairs(centers: Tensor, edge_index: Tensor, num_nodes: int, hops: int, hub: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
    """Members of the undirected ``hops``-hop ball (centre included) around each centre node.

    Args:
        centers: ``[C]`` node ids. edge_index: ``[2, E]`` (treated as undirected).
        hub: optional ``[N]`` bool: a hub node (a relation node) joins a ball without expanding it, unless it
            is the centre (hub-free regions: in a scene graph with one relation node per object pair, an n-hop
            ball through relation nodes covers the whole keyframe and every object region is the same vector).
    Returns:
        ``ci [P]`` position of the centre in ``centers`` and ``member [P]`` node id; by ``hops`` rounds of
        frontier expansion over a CSR adjacency (O(P * degree) per round, no dense matrices).
    """
    dev = centers.device
    src = torch.cat([edge_index[0], edge_index[1]])
    dst = torch.cat([edge_index[1], edge_index[0]])
    order = torch.argsort(src, stable=True)
    dst = dst.index_select(0, order)
    deg = torch.bincount(src, minlength=num_nodes)
    rowptr = torch.cumsum(deg, 0) - deg
    ci = torch.arange(centers.numel(), device=dev)
    visited = ci * num_nodes + centers
    frontier_c, frontier_m = ci, centers
    for _ in range(hops):
        if hub is not None:
            expand = ~hub.index_select(0, frontier_m) | (frontier_m == centers.index_select(0, frontier_c))
            frontier_c, frontier_m = frontier_c[expand], frontier_m[expand]
        d = deg.index_select(0, frontier_m)
        if frontier_m.numel() == 0 or int(d.sum()) == 0:
            break
        rep = torch.repeat_interleave(torch.arange(frontier_m.numel(), device=dev), d)
        off = torch.arange(rep.numel(), device=dev) - torch.repeat_interleave(torch.cumsum(d, 0) - d, d)
        nb = dst.index_select(0, rowptr.index_select(0, frontier_m).index_select(0, rep) + off)
        keys = torch.unique(frontier_c.index_select(0, rep) * num_nodes + nb)
        keys = keys[~torch.isin(keys, visited)]
        if keys.numel() == 0:
            break
        visited = torch.cat([visited, keys])
        frontier_c, frontier_m = keys // num_nodes, keys % num_nodes
    return visited // num_nodes, visited % num_nodes

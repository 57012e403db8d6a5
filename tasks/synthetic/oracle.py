"""Oracle TRS teacher of the synthetic benchmark: the positive control of issue 10.

A teacher built from the *exact* scene graphs instead of Finsta's encoders, distilled through the same TRS
channel (Eq 41: projector, distance, video level of the run's :class:`~finsta_core.config.FinstaConfig`) into
the same host. If even this teacher cannot raise the host over its step-matched control, the benchmark
cannot show a gain of Finsta's own teacher either.

Each row is a fixed (seeded) random projection of a bag of ground-truth labels:

* ``dsg [F, d]``: one row per keyframe: the labels of that keyframe's DSG nodes (objects, colours, sizes,
  spatial relations and the event predicates active at that frame, e.g. ``move left``);
* ``tsg`` / ``hsg_text [B, d]``: the labels of the sample's TSG (objects, attributes, predicates, manner
  adverbs such as ``quickly``);
* ``hsg [F, d]``: the keyframe's DSG bag plus its sample's TSG bag (the holistic graph holds both).

Use: ``finsta.trs_teacher=tasks.synthetic.oracle:oracle_teacher`` in a posttrain run (contract C4).
Labels outside the benchmark's closed vocabulary (:func:`oracle_vocabulary`) are ignored.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from tasks.synthetic.vocab import ADVERB_NAMES, PREDICATE_LABELS, label_vocabulary

EVENT_LABELS = frozenset(PREDICATE_LABELS)  # event predicates of the grammar (a DSG node label while active)
MANNER_LABELS = frozenset(ADVERB_NAMES)  # TSG manner adverbs
ORACLE_SEED = 20261130  # fixed: the projection is part of the oracle's definition, not of a run's seed


@lru_cache(maxsize=1)
def oracle_vocabulary() -> dict[str, int]:
    """Every node label of the synthetic graphs -> row of the projection (closed vocabulary)."""
    labels = sorted({lab for labs in label_vocabulary().values() for lab in labs})
    return {lab: i for i, lab in enumerate(labels)}


def projection(num_labels: int, dim: int) -> Tensor:
    """The fixed ``[V, d]`` projection: N(0, 1) rows from :data:`ORACLE_SEED` (same matrix in every run)."""
    g = torch.Generator().manual_seed(ORACLE_SEED * 1009 + dim)
    return torch.randn(num_labels, dim, generator=g)


def label_bags(labels: list[str], group: Tensor, num_groups: int) -> Tensor:
    """``[num_groups, V]`` label counts of the nodes of each group (``group [N]`` = group of every node),
    normalised to unit L1 per group (an empty group stays 0)."""
    vocab = oracle_vocabulary()
    idx = torch.tensor([vocab.get(lab, -1) for lab in labels], dtype=torch.long)
    ok = idx >= 0
    bag = torch.zeros(num_groups, len(vocab))
    bag.index_put_((group.cpu()[ok], idx[ok]), torch.ones(int(ok.sum())), accumulate=True)
    return bag / bag.sum(1, keepdim=True).clamp_min(1.0)


def oracle_features(batch: Any, dim: int, keep: frozenset[str] | None = None) -> dict[str, Tensor]:
    """The oracle rows of a collated :class:`~finsta_core.graphs.batch.GraphBatch` (module docstring);
    ``keep``: only these labels enter the bags (None = every label of the vocabulary)."""
    proj = projection(len(oracle_vocabulary()), dim)
    nf, nb = batch.dsg.num_frames, batch.num_graphs
    dsg_labels, tsg_labels = batch.dsg.labels, batch.tsg.labels
    if keep is not None:  # "" is outside the vocabulary, so label_bags ignores it
        dsg_labels = [lab if lab in keep else "" for lab in dsg_labels]
        tsg_labels = [lab if lab in keep else "" for lab in tsg_labels]
    dsg_bag = label_bags(dsg_labels, batch.dsg.frame, nf)
    tsg_bag = label_bags(tsg_labels, batch.tsg.graph, nb)
    hsg_bag = dsg_bag + tsg_bag[batch.dsg.frame_graph.cpu()]
    return {"dsg": dsg_bag @ proj, "tsg": tsg_bag @ proj, "hsg_text": tsg_bag @ proj, "hsg": hsg_bag @ proj}


def _as_readouts(feats: dict[str, Tensor], readouts: dict[str, Tensor]) -> dict[str, Tensor]:
    """The oracle rows with the readouts' keys, device and dtype (contract C4)."""
    return {k: feats[k].to(readouts[k]) for k in readouts if k in feats}


def oracle_teacher(batch: Any, readouts: dict[str, Tensor], cfg: Any) -> dict[str, Tensor]:
    """C4 external-teacher hook: ``fn(batch, readouts, cfg) -> {key: rows}`` with the readouts' shapes,
    device and dtype (detached: the oracle has no parameters)."""
    return _as_readouts(oracle_features(batch, int(cfg.d_model)), readouts)


def oracle_event_features(batch: Any, dim: int) -> dict[str, Tensor]:
    """The event-only oracle: like :func:`oracle_features` but each bag keeps only the *event* labels
    (:data:`EVENT_LABELS`: ``move left``, ``jump``, ... active at that keyframe; the TSG bag adds the manner
    adverbs). A keyframe with no active event gets a zero row. Objects, colours, sizes and spatial relations,
    which one still frame shows, are left out, so the target can only be met by encoding motion."""
    return oracle_features(batch, dim, EVENT_LABELS | MANNER_LABELS)


def oracle_event_teacher(batch: Any, readouts: dict[str, Tensor], cfg: Any) -> dict[str, Tensor]:
    """C4 hook of the event-only oracle (:func:`oracle_event_features`)."""
    return _as_readouts(oracle_event_features(batch, int(cfg.d_model)), readouts)

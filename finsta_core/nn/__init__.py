"""Finsta encoders: GTrm / R-GTrm / STGD-GTrm layers, Table 8 replacements, attention graphs, embeddings.

Every layer writes only its per-edge scores; :class:`EdgeList` (``nn/attend.py``) gathers, segment-softmaxes
and scatters for all of them. ``docs/equations.md`` maps each paper equation to its code.
"""

from finsta_core.nn.attend import EdgeList
from finsta_core.nn.baselines import GATLayer, RGNNLayer
from finsta_core.nn.encoder import GraphEncoder
from finsta_core.nn.graph import LayerGraph, build_graphs
from finsta_core.nn.gtrm import GTrmLayer, edge_attention

__all__ = ["EdgeList", "GATLayer", "GTrmLayer", "GraphEncoder", "LayerGraph", "RGNNLayer", "build_graphs",
           "edge_attention"]

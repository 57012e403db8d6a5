"""Finsta encoders: GTrm / R-GTrm / STGD-GTrm layers, Table 8 replacements, attention graphs, embeddings."""

from finsta_core.nn.baselines import GATLayer, RGNNLayer
from finsta_core.nn.encoder import GraphEncoder
from finsta_core.nn.graph import LayerGraph, build_graphs
from finsta_core.nn.gtrm import GTrmLayer, edge_attention

__all__ = ["GATLayer", "GTrmLayer", "GraphEncoder", "LayerGraph", "RGNNLayer", "build_graphs", "edge_attention"]

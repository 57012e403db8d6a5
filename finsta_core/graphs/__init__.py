"""Scene-graph types (per sample) and, in submodules, batching and scatter primitives."""

from finsta_core.graphs.types import (
    NUM_EDGE_TYPES,
    NUM_NODE_TYPES,
    DynamicSceneGraph,
    EdgeType,
    HolisticSceneGraph,
    NodeType,
    SceneGraphError,
    TextualSceneGraph,
    box_centers,
    load_graph,
    save_graph,
)

__all__ = [
    "NUM_EDGE_TYPES", "NUM_NODE_TYPES", "DynamicSceneGraph", "EdgeType", "HolisticSceneGraph", "NodeType",
    "SceneGraphError", "TextualSceneGraph", "box_centers", "load_graph", "save_graph",
]

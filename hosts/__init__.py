"""Host registry: the paper's 13 host VLMs (catalogue), the tiny synthetic host family, and the
bring-your-own-model adapter. ``create_host("clip4clip.msrvtt_ft", checkpoint=...)`` is the single
entry point; it returns the host with its matching preprocessing (``host.preprocess``)."""

from __future__ import annotations

from hosts.base import (
    CAPABILITIES,
    CapabilityError,
    CheckpointError,
    EncoderOutput,
    Host,
    HostBatch,
    HostOutputs,
    HostSpec,
    Preprocess,
    TokenStates,
    WeightTag,
)
from hosts.registry import HOSTS, create_host, split_host_name

__all__ = [
    "CAPABILITIES", "CapabilityError", "CheckpointError", "EncoderOutput", "Host", "HostBatch", "HostOutputs",
    "HostSpec", "Preprocess", "TokenStates", "WeightTag", "HOSTS", "create_host", "split_host_name",
]

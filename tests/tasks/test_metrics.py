"""Golden values of the retrieval and accuracy metrics (hand-checked small cases, ties, several references)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.metrics import (
    exact_match,
    group_max,
    mean_class_accuracy,
    normalize_answer,
    rank_metrics,
    ranks_from_scores,
    retrieval_metrics,
    topk_accuracy,
)


def test_ranks_hand_checked():
    s = np.array([[0.9, 0.1, 0.5],   # gt 0 -> rank 1
                  [0.9, 0.1, 0.5],   # gt 1 -> rank 3
                  [0.2, 0.7, 0.5]])  # gt 2 -> rank 2
    assert ranks_from_scores(s, [0, 1, 2]).tolist() == [1, 3, 2]


@pytest.mark.parametrize("rule,expected", [("pessimistic", 3), ("optimistic", 1), ("mean", 2), ("argsort", 1)])
def test_tie_rules(rule, expected):
    s = np.array([[0.5, 0.5, 0.5, 0.1]])  # gt 0 tied with 2 others
    assert ranks_from_scores(s, [0], rule)[0] == expected


def test_argsort_rule_uses_gallery_index():
    s = np.array([[0.5, 0.5, 0.5]])
    assert ranks_from_scores(s, [2], "argsort")[0] == 3
    assert ranks_from_scores(s, [1], "argsort")[0] == 2


def test_constant_scores_never_rank_first_by_default():
    m = rank_metrics(ranks_from_scores(np.zeros((4, 4)), np.arange(4)))
    assert m["R@1"] == 0.0 and m["MdR"] == 4.0 and m["MnR"] == 4.0


def test_rank_metrics_golden():
    m = rank_metrics(np.array([1, 2, 6, 11]))
    assert m == {"R@1": 25.0, "R@5": 50.0, "R@10": 75.0, "MdR": 4.0, "MnR": 5.0}


def test_multiple_references_take_best_rank():
    s = np.array([[0.1, 0.8, 0.3, 0.9]])
    assert ranks_from_scores(s, [[0, 2]])[0] == 3  # gt 2 ranks 3rd, gt 0 4th -> 3


def test_retrieval_identity_is_perfect():
    m, t2v, v2t = retrieval_metrics(np.eye(5) + 0.01, np.arange(5))
    assert m["R@1"] == 100.0 and m["v2t_R@1"] == 100.0 and m["MdR"] == 1.0
    assert t2v.tolist() == [1] * 5 and v2t.tolist() == [1] * 5


def test_retrieval_multi_caption_conventions():
    # 2 videos; texts 0,1 -> video 0, text 2 -> video 1.   sim[text, video]
    sim = np.array([[0.9, 0.2],
                    [0.1, 0.3],
                    [0.4, 0.8]])
    m, t2v, v2t = retrieval_metrics(sim, [0, 0, 1])
    assert t2v.tolist() == [1, 2, 1]
    # best_text: video 0 ranks its texts among all 3: text0=0.9 first -> 1; video 1: text2=0.8 beats 0.3,0.2 -> 1
    assert v2t.tolist() == [1, 1]
    # CLIP4Clip group_max: video 1 vs groups {max(0.2,0.3)=0.3, 0.8} -> 1; video 0 vs {0.9, 0.4} -> 1
    _, _, v2t_g = retrieval_metrics(sim, [0, 0, 1], v2t="group_max")
    assert v2t_g.tolist() == [1, 1]
    sim2 = np.array([[0.1, 0.2], [0.1, 0.95], [0.4, 0.8]])  # video 1's best rival is text 1 (0.95)
    _, _, v2t_b = retrieval_metrics(sim2, [0, 0, 1])
    _, _, v2t_g = retrieval_metrics(sim2, [0, 0, 1], v2t="group_max")
    assert v2t_b.tolist() == [2, 2] and v2t_g.tolist() == [2, 2]
    assert group_max(sim2.T, [0, 0, 1], 2).tolist() == [[0.1, 0.4], [0.95, 0.8]]


def test_ranks_reject_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(np.array([[np.nan, 1.0]]), [0])
    with pytest.raises(ValueError, match="out of range"):
        ranks_from_scores(np.zeros((1, 2)), [2])
    with pytest.raises(ValueError, match="tie_rule"):
        ranks_from_scores(np.zeros((1, 2)), [0], "random")


def test_topk_golden_and_ties():
    scores = np.array([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],   # label 1: top1
                       [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],   # label 4: rank 5 -> top5 only
                       [0.3, 0.3, 0.1, 0.1, 0.1, 0.1],   # label 0 tied with 1: pessimistic rank 2
                       [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]])  # label 0: rank 6
    acc = topk_accuracy(scores, [1, 4, 0, 0])
    assert acc == {"top1": 25.0, "top5": 75.0}
    assert topk_accuracy(scores, [1, 4, 0, 0], tie_rule="optimistic")["top1"] == 50.0
    assert mean_class_accuracy(scores, [1, 4, 0, 0]) == pytest.approx(100 / 3)


@pytest.mark.parametrize("a,b,same", [("Couch", "couch", True), (" the  man. ", "the man", True),
                                      ("t-shirt", "t shirt", False), ("a dog", "dog", False)])
def test_exact_match(a, b, same):
    assert exact_match(a, b) is same


def test_normalize_answer_articles_optional():
    assert normalize_answer("A Dog!") == "a dog"
    assert exact_match("a dog", "dog", drop_articles=True)


@pytest.mark.parametrize("rule", ["pessimistic", "optimistic", "mean", "argsort"])
def test_ranks_match_naive_reference_with_ties(rule):
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(30, 12)).astype(float)  # many ties
    gt = rng.integers(0, 12, size=30)

    def naive(row, j):
        others = np.delete(row, j)
        greater, equal = (others > row[j]).sum(), (others == row[j]).sum()
        before = (row[:j] == row[j]).sum()
        return {"pessimistic": 1 + greater + equal, "optimistic": 1 + greater, "mean": 1 + greater + equal / 2,
                "argsort": 1 + greater + before}[rule]

    assert ranks_from_scores(s, gt, rule).tolist() == [naive(s[i], gt[i]) for i in range(30)]
    # the multi-ground-truth path agrees when each query has one ground truth plus an unreachable duplicate
    multi = ranks_from_scores(np.hstack([s, np.full((30, 1), -1.0)]), [[int(g), 12] for g in gt], rule)
    assert multi.tolist() == [naive(s[i], gt[i]) for i in range(30)]

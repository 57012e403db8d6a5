"""Evaluators per task type: prediction formats, failures, ties, malformed predictions."""

from __future__ import annotations

import pytest

from tasks.base import Sample, Task, TaskType
from tasks.evaluators import PredictionError, evaluate_task


def make_task(tt: TaskType, **options) -> Task:
    cls = type("T", (Task,), {"name": f"fake_{tt.value}", "task_type": tt})
    return cls(**options)


def test_action_recognition_metrics_and_failures():
    samples = [Sample(id=str(i), label=i % 3) for i in range(4)]
    preds = [{"id": "0", "scores": [0.9, 0.1, 0.0]}, {"id": "1", "scores": [0.9, 0.1, 0.0]},
             {"id": "2", "scores": [0.0, 0.1, 0.9]}, {"id": "3", "error": "decode failed"}]
    r = evaluate_task(make_task(TaskType.ACTION_RECOGNITION), preds, samples)
    assert r.n_samples == 4 and r.n_failed == 1
    assert r.metrics["top1"] == pytest.approx(200 / 3) and r.metrics["top5"] == 100.0
    assert r.metrics["mean_class_acc"] == pytest.approx(200 / 3)
    r2 = evaluate_task(make_task(TaskType.ACTION_RECOGNITION, on_failed="wrong"), preds, samples)
    assert r2.metrics["top1"] == 50.0 and r2.metrics["top5"] == 75.0
    assert any("failed" in n for n in r.notes)


def test_missing_prediction_counts_as_failed():
    samples = [Sample(id="a", label=0), Sample(id="b", label=1)]
    r = evaluate_task(make_task(TaskType.ACTION_RECOGNITION), [{"id": "a", "scores": [1.0, 0.0]}], samples)
    assert r.n_failed == 1 and r.metrics["top1"] == 100.0
    assert [p["error"] for p in r.per_sample] == [None, "no prediction"]


@pytest.mark.parametrize("bad,match", [
    ([{"id": "zz", "scores": [1, 0]}], "no such sample"),
    ([{"id": "a", "scores": [1, 0]}, {"id": "a", "scores": [1, 0]}], "duplicate"),
    ([{"id": "a", "scores": [1, 0, 0]}, {"id": "b", "scores": [1, 0]}], "expected 3"),
    ([{"id": "a", "scores": [float("nan"), 0]}], "NaN"),
    ([{"id": "a"}], "missing 'scores'"),
])
def test_malformed_predictions_raise(bad, match):
    samples = [Sample(id="a", label=0), Sample(id="b", label=1)]
    with pytest.raises(PredictionError, match=match):
        evaluate_task(make_task(TaskType.ACTION_RECOGNITION), bad, samples)


def test_retrieval_clip4clip_convention():
    samples = [Sample(id=f"v{i}", texts=[f"t{i}"]) for i in range(3)]
    preds = [{"id": "v0", "text_index": 0, "scores": [0.9, 0.1, 0.2]},   # rank 1
             {"id": "v1", "text_index": 0, "scores": [0.5, 0.5, 0.1]},   # tie with v0: pessimistic rank 2
             {"id": "v2", "text_index": 0, "scores": [0.3, 0.1, 0.2]}]   # rank 2
    r = evaluate_task(make_task(TaskType.RETRIEVAL), preds, samples)
    assert r.metrics["R@1"] == pytest.approx(100 / 3) and r.metrics["MdR"] == 2.0 and r.metrics["MnR"] == 5 / 3
    assert "v2t_R@1" in r.metrics
    ranks = {p["id"]: p["t2v_rank"] for p in r.per_sample if "t2v_rank" in p}
    assert ranks == {"v0": 1.0, "v1": 2.0, "v2": 2.0}
    opt = evaluate_task(make_task(TaskType.RETRIEVAL, tie_rule="optimistic"), preds, samples)
    assert opt.metrics["R@1"] == pytest.approx(200 / 3)


def test_retrieval_failed_video_leaves_gallery_or_ranks_last():
    samples = [Sample(id=f"v{i}", texts=[f"t{i}"]) for i in range(3)]
    preds = [{"id": "v0", "text_index": 0, "scores": [0.1, 0.9, 0.0]},   # v1 (failed) outranks v0
             {"id": "v1", "text_index": 0, "error": "unreadable video"},
             {"id": "v2", "text_index": 0, "scores": [0.1, 0.9, 0.5]}]
    r = evaluate_task(make_task(TaskType.PARAGRAPH_RETRIEVAL), preds, samples)
    assert r.n_failed == 1 and r.metrics["R@1"] == 100.0  # gallery without v1
    w = evaluate_task(make_task(TaskType.RETRIEVAL, on_failed="wrong"), preds, samples)
    assert w.metrics["R@1"] == 0.0 and w.metrics["MnR"] == pytest.approx((2 + 3 + 2) / 3)


def test_retrieval_several_texts_per_video():
    samples = [Sample(id="a", texts=["x", "y"]), Sample(id="b", texts=["z"])]
    preds = [{"id": "a", "text_index": 0, "scores": [0.9, 0.1]}, {"id": "a", "text_index": 1, "scores": [0.2, 0.8]},
             {"id": "b", "text_index": 0, "scores": [0.3, 0.7]}]
    r = evaluate_task(make_task(TaskType.RETRIEVAL), preds, samples)
    assert r.metrics["R@1"] == pytest.approx(200 / 3)
    # video a: own best text x (0.9) vs rival z (0.3) -> 1; video b: own z (0.7) vs rival y (0.8) -> 2
    per_v = {p["id"]: p["v2t_rank"] for p in r.per_sample if "v2t_rank" in p}
    assert per_v == {"a": 1.0, "b": 2.0} and r.metrics["v2t_R@1"] == 50.0


def test_multiple_choice_and_ties():
    samples = [Sample(id="q1", options=["a", "b", "c"], answer_index=1),
               Sample(id="q2", options=["a", "b", "c"], answer_index=0),
               Sample(id="q3", options=["a", "b", "c"], answer_index=2)]
    preds = [{"id": "q1", "scores": [0.1, 0.8, 0.1]}, {"id": "q2", "scores": [0.5, 0.5, 0.0]},
             {"id": "q3", "scores": [0.0, 0.1, 0.2]}]
    r = evaluate_task(make_task(TaskType.MC_QA), preds, samples)
    assert r.metrics == {"accuracy": pytest.approx(200 / 3)}  # q2's tie is not a hit
    with pytest.raises(PredictionError, match="expected 3"):
        evaluate_task(make_task(TaskType.LONGFORM_QA), [{"id": "q1", "scores": [1, 0]}], samples)


def test_open_ended_with_answer_types():
    samples = [Sample(id="1", answer="couch", extra={"answer_type": "what"}),
               Sample(id="2", answer="man", extra={"answer_type": "who"}),
               Sample(id="3", answer="woman", extra={"answer_type": "who", "in_vocab": False})]
    preds = [{"id": "1", "answer": "Couch."}, {"id": "2", "answer": "woman"}, {"id": "3", "answer": "woman"}]
    r = evaluate_task(make_task(TaskType.OE_QA), preds, samples)
    assert r.metrics == {"accuracy": pytest.approx(200 / 3), "accuracy_what": 100.0, "accuracy_who": 50.0}
    assert any("outside the answer vocabulary" in n for n in r.notes)
    with pytest.raises(PredictionError, match="'answer' must be a string"):
        evaluate_task(make_task(TaskType.OE_QA), [{"id": "1", "answer": 3}], samples)


def test_captioning_without_java_and_failure():
    samples = [Sample(id="a", references=["the cat is on the mat"]), Sample(id="b", references=["a dog runs"])]
    preds = [{"id": "a", "caption": "the cat is on the mat"}, {"id": "b", "error": "timeout"}]
    task = make_task(TaskType.CAPTIONING, ptb_tokenize=False, caption_metrics=("BLEU@4", "CIDEr"))
    r = evaluate_task(task, preds, samples)
    assert r.n_failed == 1 and r.metrics["BLEU@4"] == pytest.approx(100.0, abs=1e-4)
    assert any("SPICE" in n for n in r.notes)
    assert r.per_sample[1]["error"] == "timeout" and r.per_sample[1]["caption"] is None


def test_registered_tasks_evaluate_excerpts(annotations):
    import numpy as np

    from tasks.registry import create_task

    ret = create_task("msrvtt_ret", root=annotations / "msrvtt")
    samples = ret.samples("test")
    n = len(samples)
    sim = np.eye(n)
    sim[0] = 0.0
    sim[0, 1] = 1.0  # text 0 prefers video 1: its ground truth (0) ties with the other 58 at 0 -> rank 60
    preds = [{"id": s.id, "text_index": 0, "scores": sim[i].tolist()} for i, s in enumerate(samples)]
    r = ret.evaluate(preds, samples)
    assert r.metrics["R@1"] == pytest.approx(100 * 59 / 60) and r.metrics["MnR"] == pytest.approx((59 + 60) / 60)

    mc = create_task("msrvtt_mc", root=annotations / "msrvtt")
    ms = mc.samples("test")
    preds = [{"id": s.id, "scores": [float(j == s.answer_index) for j in range(5)]} for s in ms]
    assert mc.evaluate(preds, ms).metrics["accuracy"] == 100.0

    qa = create_task("tgif_frameqa", root=annotations / "tgif")
    qs = qa.samples("test")
    preds = [{"id": s.id, "answer": s.answer.upper() if i % 2 == 0 else "zzz"} for i, s in enumerate(qs)]
    r = qa.evaluate(preds, qs)
    assert r.metrics["accuracy"] == 50.0 and {"accuracy_object", "accuracy_number"} <= set(r.metrics)

"""Registered synth tasks: options, splits, end-to-end evaluation with trivial predictors, noise and cache."""

from __future__ import annotations

import random

import pytest
import torch

from tasks.base import TaskType
from tasks.registry import create_task, task_names

SYNTH = ["synth_pairs", "synth_action", "synth_cap", "synth_ret", "synth_qa_mc", "synth_qa_oe", "synth_para",
         "synth_longqa"]
OPTS = {"quick": True, "n_test": 12, "n_train": 8, "diag_groups": 1}


def trivial_predictions(task, samples):
    rnd = random.Random(0)
    tt = task.task_type
    if tt == TaskType.ACTION_RECOGNITION:
        return [{"id": s.id, "scores": [rnd.random() for _ in range(task.num_classes)]} for s in samples]
    if tt == TaskType.CAPTIONING:
        return [{"id": s.id, "caption": "the red circle moves left quickly."} for s in samples]
    if tt in (TaskType.RETRIEVAL, TaskType.PARAGRAPH_RETRIEVAL):
        return [{"id": s.id, "text_index": k, "scores": [rnd.random() for _ in samples]}
                for s in samples for k in range(len(s.texts))]
    if tt in (TaskType.MC_QA, TaskType.LONGFORM_QA):
        return [{"id": s.id, "scores": [rnd.random() for _ in s.options]} for s in samples]
    return [{"id": s.id, "answer": "red"} for s in samples]


def test_all_synth_tasks_registered():
    assert set(SYNTH) <= set(task_names())


@pytest.mark.parametrize("name", SYNTH)
def test_task_evaluates_end_to_end(name):
    task = create_task(name, **OPTS)
    assert task.required_files("test") == []
    for split in task.splits:
        samples = task.samples(split)
        assert samples and len({s.id for s in samples}) == len(samples)
        if split == "train":
            continue
        res = task.evaluate(trivial_predictions(task, samples), samples)
        assert res.metrics and res.n_failed == 0, (name, split, res)
        assert task.metrics[0] in res.metrics


def test_protocol_and_identity_follow_config():
    a, b = create_task("synth_ret", quick=True), create_task("synth_ret", quick=True, size=64)
    assert a.protocol.resolution == 32 and b.protocol.resolution == 64
    assert a.fingerprint() != b.fingerprint()
    assert create_task("synth_para", quick=True).protocol.num_frames == a.config.long_host_frames


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown option"):
        create_task("synth_cap", nosuch=1)
    with pytest.raises(ValueError, match="num_events"):
        create_task("synth_cap", num_events=5)
    with pytest.raises(ValueError, match="sg_noise"):
        create_task("synth_pairs", sg_noise={"dorp": 0.3})
    with pytest.raises(ValueError, match="no split"):
        create_task("synth_cap", quick=True).samples("test_temporal")


def test_num_events_control():
    task = create_task("synth_para", quick=True, n_test=6, num_events=[3, 8])
    assert [s.extra["num_events"] for s in task.samples("test")] == [3, 4, 5, 6, 7, 8]
    task = create_task("synth_longqa", quick=True, n_test=3, num_events=5)
    assert all(s.extra["num_events"] == 5 for s in task.samples("test"))


def test_sg_noise_variants():
    clean = create_task("synth_pairs", quick=True, n_test=8).samples("test")
    drop = create_task("synth_pairs", quick=True, n_test=8, sg_noise={"drop": 0.3}).samples("test")
    lab = create_task("synth_pairs", quick=True, n_test=8, sg_noise={"label_noise": 0.5}).samples("test")
    n_clean = sum(s.scene_graph.dsg.num_nodes for s in clean)
    n_drop = sum(s.scene_graph.dsg.num_nodes for s in drop)
    assert 0.55 * n_clean < n_drop < 0.85 * n_clean
    changed = sum(a != b for s, t in zip(clean, lab)
                  for a, b in zip(s.scene_graph.dsg.labels, t.scene_graph.dsg.labels))
    assert changed > 0
    for s in drop + lab:
        s.scene_graph.validate()
    assert all(torch.equal(a.frames, b.frames) for a, b in zip(clean, drop)), "noise touches graphs only"


def test_cache_round_trip(tmp_path):
    a = create_task("synth_qa_mc", quick=True, n_test=4, cache_dir=str(tmp_path)).samples("test")
    assert list(tmp_path.glob("*.pt"))
    b = create_task("synth_qa_mc", quick=True, n_test=4, cache_dir=str(tmp_path)).samples("test")
    for x, y in zip(a, b):
        assert torch.equal(x.frames, y.frames) and x.options == y.options and x.answer_index == y.answer_index
        assert x.scene_graph.tsg.labels == y.scene_graph.tsg.labels

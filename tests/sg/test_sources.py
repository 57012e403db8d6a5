"""Contract C3 (harness/sources.py) and the graph store's fingerprints: missing / partial / stale stores are
planning errors that print the exact `sg parse` command; resume never reuses shards of another corpus.

Stores are written by hand here (random HSGs), so these tests need no detector, spaCy model or video.
"""

from __future__ import annotations

import json

import pytest

from finsta_core.sg.store import (
    GraphStore,
    finalize,
    read_manifest,
    shard_done,
    store_key,
    store_state,
    write_manifest,
    write_shard,
)
from finsta_core.testing import random_hsg
from harness.errors import PlanError
from harness.sources import (
    PosttrainSources,
    corpus_ref_from_config,
    default_store_root,
    materialize,
    resolve_posttrain_sources,
    sg_parse_command,
)


def _cfg(tmp_path, corpus: dict, sg_store: str | None = None) -> dict:
    return {"posttrain": {"corpus": corpus, "sg_store": sg_store, "split": "train"}, "data": {"limit": None},
            "store": {"root": str(tmp_path / "results" / "runs")}}


@pytest.fixture
def webvid(tmp_path):
    p = tmp_path / "results_2M_train.csv"
    p.write_text("videoid,page_dir,name\n" + "".join(f"{i},000,caption {i}\n" for i in range(6)))
    return p


def _build(ref, root, ids_ok, failed=(), shard_size=4, pipeline_fp="p1", finalize_it=True, shards=None):
    """A hand-made store for ``ref``: graphs for ``ids_ok``, failures for ``failed``."""
    key = store_key(ref.fingerprint, pipeline_fp)
    recs, _ = materialize(ref)
    n_shards = max(1, -(-len(recs) // shard_size))
    write_manifest(root, {"corpus": {"kind": ref.kind, "name": ref.name, "spec": ref.spec},
                          "corpus_fingerprint": ref.fingerprint, "pipeline_fingerprint": pipeline_fp,
                          "fingerprint": key, "pipeline_args": ["--classes", "/c.txt", "--random-weights"],
                          "n_records": len(recs), "shard_size": shard_size, "n_shards": n_shards})
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for s in range(n_shards) if shards is None else shards:
        part = recs[s * shard_size:(s + 1) * shard_size]
        graphs = [random_hsg(i, num_frames=3, sample_id=r["id"]) for i, r in enumerate(part) if r["id"] in ids_ok]
        fails = [{"id": r["id"], "video": r["video"], "reason": "unreadable video: x"} for r in part
                 if r["id"] in failed]
        write_shard(root, s, graphs, fails, {}, key)
    if finalize_it:
        finalize(root, n_shards, key)
    return key


def test_corpus_from_config_and_default_store(tmp_path, webvid):
    ref = corpus_ref_from_config(_cfg(tmp_path, {"mixture": "webvid", "files": {"webvid": str(webvid)},
                                                 "n": {"webvid": 4}, "seed": 3}))
    assert ref.kind == "corpus" and ref.name == "webvid" and len(materialize(ref)[0]) == 4
    one = corpus_ref_from_config(_cfg(tmp_path, {"file": str(webvid), "n": 4, "seed": 3}))
    assert one.fingerprint == ref.fingerprint  # the shorthand is the same corpus
    root = default_store_root(_cfg(tmp_path, {}), ref)
    assert root.parent == (tmp_path / "results" / "sg") and root.name.endswith(ref.fingerprint[:10])
    for bad, msg in (({"mixture": "webvid25k_hdvila25k", "files": {"webvid": str(webvid)}}, "needs a file for "
                      "source 'hdvila'"), ({"mixtur": "x"}, "unknown key"), ({"seed": 1}, "needs 'mixture'"),
                     ({"file": str(tmp_path / "none.csv")}, "corpus file not found")):
        with pytest.raises(PlanError, match=msg):
            corpus_ref_from_config(_cfg(tmp_path, bad))


def test_missing_partial_stale_and_complete_store(tmp_path, webvid):
    corpus = {"mixture": "webvid", "files": {"webvid": str(webvid)}}
    store = tmp_path / "sg"
    cfg = _cfg(tmp_path, corpus, str(store))
    ref = corpus_ref_from_config(cfg)
    # missing: the command names the corpus exactly, with placeholders for the detector files
    with pytest.raises(PlanError) as err:
        resolve_posttrain_sources(cfg)
    msg = str(err.value)
    assert "has no scene graphs" in msg and "\n" not in msg
    assert msg.endswith(sg_parse_command(ref, store))
    assert f"python -m harness sg parse --mixture webvid --corpus-file webvid={webvid} --out {store}" in msg
    assert "--classes <CLASSES.txt> --detector-checkpoint <DETECTOR.pth>" in msg
    # partial: one of two shards, not finalized; the command now carries the store's own pipeline flags
    _build(ref, store, {"webvid_0", "webvid_1", "webvid_2"}, failed={"webvid_3"}, shards=[0], finalize_it=False)
    with pytest.raises(PlanError, match=r"partial .*1 of 2 shards.*--classes /c.txt --random-weights$"):
        resolve_posttrain_sources(cfg)
    # complete
    key = _build(ref, store, {f"webvid_{i}" for i in range(6)} - {"webvid_3"}, failed={"webvid_3"})
    src = resolve_posttrain_sources(cfg)
    assert (src.n_pairs, src.n_failed, src.sg_store, src.kind) == (5, 1, str(store), "corpus")
    assert PosttrainSources.from_dict(json.loads(json.dumps(src.to_dict()))) == src
    assert src.identity() == {"corpus": ref.fingerprint, "scene_graphs": src.sg_fingerprint}
    assert store_state(store).state == "complete" and read_manifest(store)["fingerprint"] == key
    # stale: the corpus file changed after the store was built
    webvid.write_text(webvid.read_text() + "99,000,a new caption\n")
    with pytest.raises(PlanError, match=r"is stale: it was built from corpus fingerprint .* --rebuild$"):
        resolve_posttrain_sources(cfg)


def test_shards_of_another_corpus_are_not_done(tmp_path):
    g = [random_hsg(0, num_frames=2, sample_id="a")]
    write_shard(tmp_path, 0, g, [], {}, "key-A")
    assert shard_done(tmp_path, 0) and shard_done(tmp_path, 0, "key-A") and not shard_done(tmp_path, 0, "key-B")
    summary = finalize(tmp_path, 1, "key-B")
    assert summary["missing_shards"] == [0] and summary["n_ok"] == 0
    assert finalize(tmp_path, 1, "key-A")["n_ok"] == 1 and GraphStore(tmp_path)["a"].sample_id == "a"


def test_store_without_any_graph_and_corrupt_index(tmp_path, webvid):
    cfg = _cfg(tmp_path, {"file": str(webvid)}, str(tmp_path / "sg"))
    ref = corpus_ref_from_config(cfg)
    _build(ref, tmp_path / "sg", set(), failed={f"webvid_{i}" for i in range(6)})
    with pytest.raises(PlanError, match=r"holds no graph: all 6 records failed \(unreadable video\)"):
        resolve_posttrain_sources(cfg)
    (tmp_path / "sg" / "index.json").write_text("{half")
    with pytest.raises(PlanError, match=r"index.json is corrupt"):
        resolve_posttrain_sources(cfg)


def test_graph_store_names_the_failure(tmp_path, webvid):
    cfg = _cfg(tmp_path, {"file": str(webvid)}, str(tmp_path / "sg"))
    _build(corpus_ref_from_config(cfg), tmp_path / "sg", {"webvid_0"}, failed={"webvid_1"})
    with pytest.raises(KeyError, match="parsing failed: unreadable video"):
        GraphStore(tmp_path / "sg")["webvid_1"]


def test_posttrain_dataset_reads_pairs_and_graphs(tmp_path, webvid):
    from harness.jobs.data import posttrain_dataset

    cfg = _cfg(tmp_path, {"file": str(webvid)}, str(tmp_path / "sg"))
    ref = corpus_ref_from_config(cfg)
    _build(ref, tmp_path / "sg", {f"webvid_{i}" for i in range(6)} - {"webvid_1"}, failed={"webvid_1"})
    src = resolve_posttrain_sources(cfg).to_dict()
    samples, graphs = posttrain_dataset(src)
    assert [s.id for s in samples] == ["webvid_0", "webvid_2", "webvid_3", "webvid_4", "webvid_5"]
    assert samples[0].texts == ["caption 0"] and samples[0].video == str(tmp_path / "000" / "0.mp4")
    assert set(graphs) == {s.id for s in samples} and samples[0].scene_graph is graphs["webvid_0"]
    assert [s.id for s in posttrain_dataset(src, limit=3)[0]] == ["webvid_0", "webvid_2"]
    # the store is rebuilt after planning: the job refuses instead of training on other graphs
    _build(ref, tmp_path / "sg", {"webvid_0"}, pipeline_fp="p2")
    with pytest.raises(ValueError, match="changed since this run was planned"):
        posttrain_dataset(src)


def test_task_split_as_corpus(tmp_path):
    """posttrain.corpus = {}: the data task's split; fingerprint from the task; the store must cover data.limit."""
    from harness.jobs.data import posttrain_dataset
    from tasks.registry import create_task
    from tests.e2e.builders import write_msrvtt

    root = write_msrvtt(tmp_path / "msrvtt", n_test=2, n_train=3, frames=2, size=16)
    task = create_task("msrvtt_ret", root=root)
    cfg = _cfg(tmp_path, {}, str(tmp_path / "sg"))
    ref = corpus_ref_from_config(cfg, task)
    assert ref.kind == "task" and ref.cli_args()[:4] == ["--task", "msrvtt_ret", "--split", "train"]
    with pytest.raises(PlanError, match=r"sg parse --task msrvtt_ret --split train --root .*msrvtt --out"):
        resolve_posttrain_sources(cfg, task)
    ids = [s.id for s in task.samples("train")]
    _build(ref, tmp_path / "sg", set(ids[:2]), failed={ids[2]})
    samples, graphs = posttrain_dataset(resolve_posttrain_sources(cfg, task).to_dict(), task)
    assert [s.id for s in samples] == ids[:2] and samples[0].texts == task.samples("train")[0].texts
    assert all(s.scene_graph is graphs[s.id] for s in samples)
    # a store built for the first 2 samples does not cover a run on all of them
    limited = corpus_ref_from_config({**cfg, "data": {"limit": 2}}, task)
    _build(limited, tmp_path / "sg2", set(ids[:2]))
    with pytest.raises(PlanError, match="covers the first 2 samples"):
        resolve_posttrain_sources(_cfg(tmp_path, {}, str(tmp_path / "sg2")), task)
    assert resolve_posttrain_sources({**_cfg(tmp_path, {}, str(tmp_path / "sg2")), "data": {"limit": 2}},
                                     task).n_pairs == 2


def test_vila_clip_spans_reach_the_parser(tmp_path):
    """A VILA record's span travels corpus -> corpus.jsonl -> CorpusRecord.span (keyframes of that window only)."""
    from finsta_core.sg.pipeline import CorpusError, read_corpus
    from harness.sources import corpus_ref_from_file

    v = tmp_path / "h.jsonl"
    v.write_text(json.dumps({"clip_id": "a.mp4", "text": "a man sits", "span": ["00:00:01.000", "00:00:02.500"]})
                 + "\n")
    recs, _ = materialize(corpus_ref_from_file(str(v)))
    out = tmp_path / "corpus.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert read_corpus(out)[0].span == (1.0, 2.5)
    out.write_text(json.dumps({"id": "x", "video": "x.mp4", "caption": "c", "clip_span": "soon"}) + "\n")
    with pytest.raises(CorpusError, match="record 1: field 'clip_span'"):
        read_corpus(out)


def test_task_corpus_fingerprint_follows_annotation_content(tmp_path):
    from tasks.registry import create_task
    from tests.e2e.builders import write_msrvtt

    root = write_msrvtt(tmp_path / "msrvtt", n_test=2, n_train=2, frames=2, size=16)
    cfg = _cfg(tmp_path, {}, str(tmp_path / "sg"))
    before = corpus_ref_from_config(cfg, create_task("msrvtt_ret", root=root)).fingerprint
    data = root / "MSRVTT_data.json"
    data.write_text(data.read_text().replace("a little girl", "a small girl"))
    assert corpus_ref_from_config(cfg, create_task("msrvtt_ret", root=root)).fingerprint != before

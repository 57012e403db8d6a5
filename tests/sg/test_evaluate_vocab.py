import pytest
import torch

from finsta_core.graphs.types import NodeType
from finsta_core.sg.evaluate import GOLD_TSG_PATH, read_gold, tsg_tuples, tuple_f1
from finsta_core.sg.tsg import spacy_model_available
from finsta_core.sg.vocab import VocabularyFilter
from tests.sg.conftest import make_hsg


def test_tuple_f1_golden():
    gold = [{"object": {("man",), ("chair",)}, "attribute": {("chair", "red")},
             "relation": {("man", "sit on", "chair")}, "adverb": set()}]
    pred = [{"object": {("Man",), ("chair",), ("dog",)}, "attribute": set(),
             "relation": {("man", "sit on", "chair")}, "adverb": {("sit on", "quickly")}}]
    r = tuple_f1(pred, gold)
    assert r["object"]["precision"] == pytest.approx(2 / 3) and r["object"]["recall"] == 1.0
    assert r["object"]["f1"] == pytest.approx(0.8)
    assert r["attribute"]["f1"] == 0.0 and r["relation"]["f1"] == 1.0
    assert r["all"]["precision"] == pytest.approx(3 / 5) and r["all"]["recall"] == pytest.approx(3 / 4)


def test_tsg_tuples_maps_single_argument_predicates_to_attributes(hsg):
    t = tsg_tuples(hsg.tsg)
    assert t["relation"] == {("man", "sit down on", "chair")} and t["adverb"] == {("sit down on", "quickly")}
    assert t["attribute"] == {("chair", "red")}


def test_gold_file_reads_and_has_enough_captions():
    gold = read_gold()
    assert 60 <= len(gold) <= 100 and sum(len(r["adverb"]) for r in gold) >= 20


def test_read_gold_errors(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text('{"caption": "a dog", "relation": [["dog", "run"]]}\n')
    with pytest.raises(ValueError, match="g.jsonl:1: relation tuple"):
        read_gold(p)


@pytest.mark.model
@pytest.mark.skipif(not spacy_model_available(), reason="no spaCy English model")
def test_finsta_rules_beat_baseline_on_gold():
    from finsta_core.sg.evaluate import compare_parsers

    r = compare_parsers(GOLD_TSG_PATH, repeats=1)["systems"]
    ours, base = r["finsta_rules"]["f1"], r["sceneparser_baseline"]["f1"]
    assert ours["relation"]["f1"] > base["relation"]["f1"] + 0.2
    assert ours["adverb"]["f1"] > 0.7 and base["adverb"]["f1"] == 0.0
    assert r["finsta_rules"]["captions_per_s"] > 0


def test_vocabulary_filter_counts_and_apply():
    graphs = [make_hsg(2) for _ in range(5)]
    graphs[0].tsg.labels[3] = "stool"  # seen once -> filtered from TSG
    vf = VocabularyFilter(tsg_min_count=4, dsg_min_count=6).update(graphs)
    st = vf.statistics()
    assert st["tsg/object"]["distinct"] == 3 and st["tsg/object"]["kept"] == 2
    assert st["dsg/object"]["occurrences"] == 20 and st["dsg/object"]["kept"] == 2  # 10 each > 6
    out = vf.apply(graphs[0]).validate()
    assert "stool" not in out.tsg.labels and out.tsg.num_nodes == 4
    assert "red" in out.dsg.labels  # 10 occurrences
    assert "|" in vf.format_table()


def test_vocabulary_filter_never_empties_a_graph():
    g = make_hsg(1)
    vf = VocabularyFilter(tsg_min_count=100, dsg_min_count=100).update([g])
    out = vf.apply(g)
    assert out.tsg.num_nodes == 1 and out.dsg.num_nodes == 1
    assert out.dsg.node_type.dtype == torch.long and int(out.tsg.node_type[0]) in {int(x) for x in NodeType}

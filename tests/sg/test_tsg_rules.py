"""TSG rules on hand-built parses (no spaCy model needed): spaCy builds a Doc from words/heads/deps/POS."""

import pytest

spacy = pytest.importorskip("spacy")

from finsta_core.graphs.types import EdgeType, NodeType  # noqa: E402
from finsta_core.sg.evaluate import tsg_tuples  # noqa: E402
from finsta_core.sg.tsg import TSGParser, TSGParserConfig  # noqa: E402

PARSES = {
    "a man quickly sits down on the chair": [
        "a/DET/DT/det/1/a", "man/NOUN/NN/nsubj/3/man", "quickly/ADV/RB/advmod/3/quickly", "sits/VERB/VBZ/ROOT/3/sit",
        "down/ADP/RP/prt/3/down", "on/ADP/IN/prep/3/on", "the/DET/DT/det/7/the", "chair/NOUN/NN/pobj/5/chair"],
    # spaCy's other labelling of the particle: advmod ADV right after the verb
    "a man sits down on the chair quickly": [
        "a/DET/DT/det/1/a", "man/NOUN/NN/nsubj/2/man", "sits/VERB/VBZ/ROOT/2/sit", "down/ADV/RB/advmod/2/down",
        "on/ADP/IN/prep/2/on", "the/DET/DT/det/6/the", "chair/NOUN/NN/pobj/4/chair",
        "quickly/ADV/RB/advmod/2/quickly"],
    "the chair is in front of the desk": [
        "the/DET/DT/det/1/the", "chair/NOUN/NN/nsubj/2/chair", "is/AUX/VBZ/ROOT/2/be", "in/ADP/IN/prep/2/in",
        "front/NOUN/NN/pobj/3/front", "of/ADP/IN/prep/4/of", "the/DET/DT/det/7/the", "desk/NOUN/NN/pobj/5/desk"],
    "many planes are parked next to a long building in an airport": [
        "many/ADJ/JJ/amod/1/many", "planes/NOUN/NNS/nsubjpass/3/plane", "are/AUX/VBP/auxpass/3/be",
        "parked/VERB/VBN/ROOT/3/park", "next/ADV/RB/advmod/3/next", "to/ADP/IN/prep/4/to", "a/DET/DT/det/8/a",
        "long/ADJ/JJ/amod/8/long", "building/NOUN/NN/pobj/5/building", "in/ADP/IN/prep/8/in",
        "an/DET/DT/det/11/an", "airport/NOUN/NN/pobj/9/airport"],
    "a woman slowly cuts and very quickly eats an apple": [
        "a/DET/DT/det/1/a", "woman/NOUN/NN/nsubj/3/woman", "slowly/ADV/RB/advmod/3/slowly", "cuts/VERB/VBZ/ROOT/3/cut",
        "and/CCONJ/CC/cc/3/and", "very/ADV/RB/advmod/6/very", "quickly/ADV/RB/advmod/7/quickly",
        "eats/VERB/VBZ/conj/3/eat", "an/DET/DT/det/9/an", "apple/NOUN/NN/dobj/7/apple"],
    "the ball is kicked by a boy": [
        "the/DET/DT/det/1/the", "ball/NOUN/NN/nsubjpass/3/ball", "is/AUX/VBZ/auxpass/3/be",
        "kicked/VERB/VBN/ROOT/3/kick", "by/ADP/IN/agent/3/by", "a/DET/DT/det/6/a", "boy/NOUN/NN/pobj/4/boy"],
    "a girl is not smiling": [
        "a/DET/DT/det/1/a", "girl/NOUN/NN/nsubj/4/girl", "is/AUX/VBZ/aux/4/be", "not/PART/RB/neg/4/not",
        "smiling/VERB/VBG/ROOT/4/smile"],
    "a man walks in and he sits down": [
        "a/DET/DT/det/1/a", "man/NOUN/NN/nsubj/2/man", "walks/VERB/VBZ/ROOT/2/walk", "in/ADV/RB/prt/2/in",
        "and/CCONJ/CC/cc/2/and", "he/PRON/PRP/nsubj/6/he", "sits/VERB/VBZ/conj/2/sit", "down/ADP/RP/prt/6/down"],
    "the man is very tall": [
        "the/DET/DT/det/1/the", "man/NOUN/NN/nsubj/2/man", "is/AUX/VBZ/ROOT/2/be", "very/ADV/RB/advmod/4/very",
        "tall/ADJ/JJ/acomp/2/tall"],
    "where does the dog run": [
        "where/SCONJ/WRB/advmod/4/where", "does/AUX/VBZ/aux/4/do", "the/DET/DT/det/3/the",
        "dog/NOUN/NN/nsubj/4/dog", "run/VERB/VB/ROOT/4/run"],
}


_VOCAB = spacy.blank("en").vocab  # English syntax iterators give noun_chunks on hand-built docs


def make_doc(spec):
    from spacy.tokens import Doc

    parts = [s.split("/") for s in spec]
    words = [p[0] for p in parts]
    spaces = [True] * (len(words) - 1) + [False]
    return Doc(_VOCAB, words=words, spaces=spaces, pos=[p[1] for p in parts], tags=[p[2] for p in parts],
               deps=[p[3] for p in parts], heads=[int(p[4]) for p in parts], lemmas=[p[5] for p in parts])


def parse(text, adverbs=True):
    doc = make_doc(PARSES[text])
    assert doc.text == text
    return TSGParser(TSGParserConfig(adverbs=adverbs), nlp=object()).from_doc(doc)


def test_sit_down_on_with_adverb():
    g = parse("a man quickly sits down on the chair").validate()
    t = tsg_tuples(g)
    assert t["relation"] == {("man", "sit down on", "chair")}
    assert t["adverb"] == {("sit down on", "quickly")}
    # spans point at the words (used for host token pooling)
    spans = {lab: g.caption[s:e] for lab, (s, e) in zip(g.labels, g.spans.tolist())}
    assert spans == {"man": "man", "chair": "chair", "sit down on": "sits down on", "quickly": "quickly"}


def test_advmod_particle_is_not_an_adverb():
    t = tsg_tuples(parse("a man sits down on the chair quickly"))
    assert t["relation"] == {("man", "sit down on", "chair")}
    assert t["adverb"] == {("sit down on", "quickly")}


def test_copular_phrasal_preposition():  # SceneGraphParser issue #22 yields no relation here
    t = tsg_tuples(parse("the chair is in front of the desk"))
    assert t["object"] == {("chair",), ("desk",)}
    assert t["relation"] == {("chair", "in front of", "desk")}


def test_passive_next_to():  # SceneGraphParser issue #20 misses the planes relation
    t = tsg_tuples(parse("many planes are parked next to a long building in an airport"))
    assert ("plane", "park next to", "building") in t["relation"]
    assert ("building", "in", "airport") in t["relation"]
    assert {("plane", "many"), ("building", "long")} <= t["attribute"]


def test_conjoined_verbs_keep_their_own_adverbs():
    g = parse("a woman slowly cuts and very quickly eats an apple")
    t = tsg_tuples(g)
    assert t["adverb"] == {("cut", "slowly"), ("eat", "very quickly")}
    assert ("woman", "eat", "apple") in t["relation"] and ("woman", "cut") in t["attribute"]
    # every predicate is a node, the intransitive one included
    assert sum(1 for x in g.node_type.tolist() if x == NodeType.RELATION) == 2


def test_adverbs_can_be_switched_off():
    g = parse("a woman slowly cuts and very quickly eats an apple", adverbs=False)
    assert NodeType.ADVERB not in g.node_type.tolist()


def test_passive_with_agent_is_reversed():
    assert tsg_tuples(parse("the ball is kicked by a boy"))["relation"] == {("boy", "kick", "ball")}


def test_negation_is_a_flag_not_an_adverb():
    g = parse("a girl is not smiling")
    assert NodeType.ADVERB not in g.node_type.tolist()
    assert [g.labels[i] for i in g.meta["negated"]] == ["smile"]


def test_pronoun_resolves_to_antecedent_and_particles():
    g = parse("a man walks in and he sits down")
    t = tsg_tuples(g)
    assert t["object"] == {("man",)}
    assert t["attribute"] == {("man", "walk in"), ("man", "sit down")}


def test_predicative_adjective_keeps_its_adverb():
    t = tsg_tuples(parse("the man is very tall"))
    assert t["attribute"] == {("man", "very tall")} and not t["adverb"]


def test_wh_word_is_not_an_adverb():
    g = parse("where does the dog run")
    assert NodeType.ADVERB not in g.node_type.tolist()
    assert tsg_tuples(g)["attribute"] == {("dog", "run")}


def test_edges_follow_semantic_direction():
    g = parse("a man quickly sits down on the chair")
    for (s, t), e in zip(g.edge_index.T.tolist(), g.edge_type.tolist()):
        if e == EdgeType.SUBJ_PRED:
            assert g.node_type[s] == NodeType.OBJECT and g.node_type[t] == NodeType.RELATION
        if e == EdgeType.PRED_ADV:
            assert g.labels[t] == "quickly"


def test_baseline_reproduces_known_failures():
    from finsta_core.sg.baseline import baseline_tuples

    assert baseline_tuples(make_doc(PARSES["the chair is in front of the desk"]))["relation"] == set()
    rel = baseline_tuples(make_doc(PARSES["many planes are parked next to a long building in an airport"]))["relation"]
    assert not any(r[0] == "plane" for r in rel)
    assert baseline_tuples(make_doc(PARSES["a man quickly sits down on the chair"]))["relation"] == {
        ("man", "on", "chair")}

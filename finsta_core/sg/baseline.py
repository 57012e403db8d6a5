"""Baseline for comparison: the rule set of the widely used spaCy port of the Stanford scene-graph parser
(``vacancy/SceneGraphParser``, MIT), re-implemented here from its documented behaviour (design note C.1).

It produces tuples only (no graph): entities are noun chunks (pronouns skipped) with ``compound`` children
prefixed; ``amod`` / ``nummod`` children are attributes; relations come from the dependency of each chunk root
(``dobj``/``attr`` -> verb; ``pobj`` -> adjacent listed phrasal verb, else the bare preposition when its head
is a verb with a known subject, listed phrasal prepositions after a noun, noun-preposition-noun, "next to"
style ``amod``/``advmod`` heads; ``nsubjpass`` -> the passive verb with the agent as subject). There are no
predicate nodes for intransitive verbs, no adverbs, no copular prepositions and no conjunction expansion,
which is exactly what :mod:`finsta_core.sg.tsg_rules` adds. Known failures it reproduces: "the chair is in
front of the desk" (no relation), "many planes are parked next to a long building" (no planes relation),
"sit down on" (degrades to "on").
"""

from __future__ import annotations

from typing import Any

# small lists in the spirit of the port's database (phrasal verbs must be adjacent to the preposition)
_PHRASAL_VERBS = frozenset({"look at", "listen to", "talk to", "point at", "stare at", "wait for", "look for",
                            "search for", "laugh at", "smile at", "speak to", "walk into", "run into",
                            "jump into", "get into", "get out", "put on", "take off", "climb up", "play with"})
_PHRASAL_PREPS = frozenset({"in front of", "on top of", "in the middle of", "at the top of", "on the side of",
                            "in the back of", "at the bottom of", "on the edge of", "in the front of"})


def _lem(t: Any) -> str:
    return (t.lemma_ or t.text).lower()


def baseline_tuples(doc: Any) -> dict[str, set[tuple[str, ...]]]:
    """Tuples ``{"object", "attribute", "relation", "adverb"}`` of one parsed ``Doc`` with the port's rules."""
    chunks = [c for c in doc.noun_chunks if c.root.pos_ != "PRON"]
    label: dict[int, str] = {}
    attrs: set[tuple[str, ...]] = set()
    for c in chunks:
        r = c.root
        name = " ".join([x.lower_ for x in r.children if x.dep_ == "compound"] + [_lem(r)])
        label[r.i] = name
        attrs |= {(name, x.lower_) for x in r.children if x.dep_ in ("amod", "nummod")}
    subj: dict[int, int] = {}
    for t in doc:
        if t.dep_ == "nsubj":
            subj[t.head.i] = t.i
        elif t.dep_ == "acl":
            subj[t.i] = t.head.i
        elif t.dep_ == "pobj" and t.head.dep_ == "agent" and t.head.head.pos_ == "VERB":
            subj[t.head.head.i] = t.i
    rels: list[tuple[int, str, int]] = []
    fake: set[int] = set()
    for c in chunks:
        r = c.root
        h = r.head
        if r.dep_ in ("dobj", "attr") and h.i in subj:
            rels.append((subj[h.i], _lem(h), r.i))
        elif r.dep_ == "pobj" and h.dep_ != "agent":
            hh = h.head
            phrasal = f"{_lem(hh)} {_lem(h)}"
            if hh.pos_ == "VERB" and hh.i + 1 == h.i and phrasal in _PHRASAL_VERBS and hh.i in subj:
                rels.append((subj[hh.i], phrasal, r.i))
            elif (hh.pos_ == "VERB" or hh.dep_ == "acl") and hh.i in subj:
                rels.append((subj[hh.i], _lem(h), r.i))
            elif hh.dep_ == "pobj" and doc[hh.head.i:h.i + 1].text.lower() in _PHRASAL_PREPS:
                fake.add(hh.i)
                rels.append((hh.head.head.i, doc[hh.head.i:h.i + 1].text.lower(), r.i))
            elif hh.pos_ == "NOUN":
                rels.append((hh.i, _lem(h), r.i))
            elif hh.dep_ in ("amod", "advmod") and hh.head.pos_ == "NOUN":
                rels.append((hh.head.i, f"{hh.lower_} {_lem(h)}", r.i))
            elif hh.dep_ in ("amod", "advmod") and hh.head.pos_ == "VERB" and hh.head.i in subj:
                rels.append((subj[hh.head.i], f"{hh.lower_} {_lem(h)}", r.i))
        elif r.dep_ == "nsubjpass" and h.i in subj:
            rels.append((subj[h.i], _lem(h), r.i))

    def locate(i: int) -> str | None:
        for c in chunks:
            if c.start <= i < c.end and c.root.i not in fake:
                return label[c.root.i]
        return None

    out_rel = set()
    for s, p, o in rels:
        ls, lo = locate(s), locate(o)
        if ls is not None and lo is not None:
            out_rel.add((ls, p, lo))
    objects = {(label[c.root.i],) for c in chunks if c.root.i not in fake}
    return {"object": objects, "attribute": {a for a in attrs if (a[0],) in objects}, "relation": out_rel,
            "adverb": set()}

"""Dependency rules that turn one spaCy ``Doc`` into a retrofitted textual scene graph (paper sec 3.2).

Rules follow the Stanford scene-graph rules (Schuster et al. 2015, paper ref [20]) as summarised in
``docs/design/finsta-core.md`` C.1, on spaCy's ClearNLP-style labels:

* objects: noun-chunk heads (plus possessor nouns and indefinite pronouns) with ``compound`` children folded
  into the label ("train track"); quantifier phrases collapse onto the real head ("a group of people");
  "the X" after an earlier X is the same node; personal pronouns resolve to the nearest fitting antecedent.
* object attributes: ``amod`` (with their adverbs: "mostly white"), ``nummod``, predicative adjectives
  (``acomp`` under a copula or linking verb) and copular nouns ("the man is a rider"); conjuncts expanded.
* predicates: every verb is a node, intransitive ones too. Label = verb lemma + particles + preposition
  ("sit down on", "park next to", "stand in front of"); one node per (verb, argument phrase), with edges
  subject -> predicate -> object(s). Subjects: ``nsubj``; passive agents ("by X"); the head noun of ``acl``
  / ``relcl`` clauses; inherited along ``conj`` / ``xcomp`` / ``advcl``. Copular and noun prepositional
  phrases give relation nodes named by the preposition ("in", "in front of"); ``poss`` gives "have".
* the paper's retrofit: ``advmod`` / ``npadvmod`` adverbs of a predicate verb become ADVERB nodes linked
  predicate -> adverb ("very hastily"), excluding particles, wh-words and negation; negation is recorded in
  ``meta["negated"]`` (predicate node ids). Conjoined verbs keep their own adverbs.

Every node keeps the character span of its words in the caption (used to pool host tokens, sec 5.2).
"""

from __future__ import annotations

from typing import Any

from finsta_core.graphs.types import EdgeType, NodeType, TextualSceneGraph
from finsta_core.sg import lexicon as lx

Token = Any  # spacy.tokens.Token; spaCy is imported lazily by the parser
_ARG_PREP_DEPS = ("prep", "agent")


def _lem(t: Token) -> str:
    lem = (t.lemma_ or t.text).lower()
    return t.text.lower() if lem in ("", "-pron-") else lem


def _conjuncts(t: Token) -> list[Token]:
    """``t`` and its ``conj`` chain (same-kind coordination only)."""
    out, stack = [t], [t]
    while stack:
        for c in stack.pop().children:
            same_kind = c.pos_ == t.pos_ or {c.pos_, t.pos_} <= {"NOUN", "PROPN", "PRON"}
            if c.dep_ == "conj" and same_kind:
                out.append(c)
                stack.append(c)
    return out


def _is_particle(t: Token, verb: Token) -> bool:
    if t.dep_ == "prt":
        return True
    return (t.dep_ == "advmod" and _lem(t) in lx.PARTICLES
            and (t.i == verb.i + 1 or any(c.dep_ == "prep" for c in t.children)))


class _Graph:
    """Node / edge accumulator with de-duplication."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.labels: list[str] = []
        self.types: list[int] = []
        self.spans: list[tuple[int, int]] = []
        self.edges: dict[tuple[int, int, int], None] = {}

    def node(self, label: str, ntype: NodeType, toks: list[Token]) -> int:
        self.labels.append(" ".join(label.split()))
        self.types.append(int(ntype))
        self.spans.append(self._span(toks))
        return len(self.labels) - 1

    def _span(self, toks: list[Token]) -> tuple[int, int]:
        """Character span covering ``toks`` when they are contiguous, else the span of the first (head) token."""
        if not toks:
            return (-1, -1)
        idx = sorted(t.i for t in toks)
        head = toks[0]
        if idx[-1] - idx[0] + 1 != len(set(idx)):
            return (head.idx, head.idx + len(head.text))
        first, last = self.doc[idx[0]], self.doc[idx[-1]]
        return (first.idx, last.idx + len(last.text))

    def edge(self, s: int, t: int, et: EdgeType) -> None:
        self.edges[(s, t, int(et))] = None

    def build(self, caption: str, meta: dict[str, Any]) -> TextualSceneGraph:
        e = list(self.edges)
        return TextualSceneGraph(caption, self.labels, self.types, [[x[0] for x in e], [x[1] for x in e]],
                                 [x[2] for x in e], self.spans if self.spans else [[-1, -1]][:0], meta)


class TSGRules:
    """Apply the rules to one parsed ``Doc``: ``TSGRules(doc).run() -> TextualSceneGraph``."""

    def __init__(self, doc: Any, adverbs: bool = True) -> None:
        self.doc = doc
        self.adverbs = adverbs
        self.g = _Graph(doc)
        self.ent: dict[int, int] = {}  # token index -> object node id
        self.alias: dict[int, int] = {}  # quantifier / phrasal noun token -> real head token
        self.negated: list[int] = []
        self.verb_preds: set[int] = set()  # relation nodes headed by a verb

    # ----------------------------------------------------------------------------------------- objects
    def _entity_heads(self) -> list[Token]:
        doc = self.doc
        heads = {c.root.i for c in doc.noun_chunks}
        heads |= {t.i for t in doc if t.dep_ == "poss" and t.pos_ in ("NOUN", "PROPN")}
        heads |= {t.i for t in doc if _lem(t) in lx.ENTITY_PRONOUNS}
        # conjuncts of heads are heads (noun_chunks covers most; be safe on hand-built parses)
        for i in list(heads):
            heads |= {c.i for c in _conjuncts(doc[i]) if c.pos_ in ("NOUN", "PROPN")}
        out = []
        for i in sorted(heads):
            t = doc[i]
            if t.pos_ == "PRON" and _lem(t) not in lx.ENTITY_PRONOUNS:
                continue
            if t.dep_ == "compound" or self._phrasal_noun(t) or self._copular_noun(t):
                continue
            q = self._quantified(t)
            if q is not None:
                self.alias[t.i] = q.i
                continue
            out.append(t)
        return out

    @staticmethod
    def _of_object(t: Token) -> Token | None:
        for c in t.children:
            if c.dep_ == "prep" and c.lower_ == "of":
                for p in c.children:
                    if p.dep_ == "pobj":
                        return p
        return None

    def _phrasal_noun(self, t: Token) -> bool:
        """"front" in "in front of": noun under a preposition with an "of" object."""
        return (_lem(t) in lx.PHRASAL_PREP_NOUNS and t.dep_ == "pobj" and t.head.dep_ in ("prep", "agent")
                and self._of_object(t) is not None)

    def _quantified(self, t: Token) -> Token | None:
        lem = _lem(t)
        if lem not in lx.QUANTIFIER_NOUNS or lem in lx.CONTAINER_NOUNS:
            return None
        return self._of_object(t)

    def _copular_noun(self, t: Token) -> bool:
        """"rider" in "the man is a rider": an attribute of the subject, not an object."""
        if t.dep_ != "attr" or _lem(t.head) != "be":
            return False
        return any(c.dep_ == "nsubj" for c in t.head.children)

    def _add_objects(self) -> None:
        seen: dict[str, int] = {}
        for t in self._entity_heads():
            comp = [c for c in t.subtree if c.dep_ == "compound" and c.i < t.i and c.head.i >= c.i]
            toks = sorted(comp + [t], key=lambda x: x.i)
            label = " ".join([c.lower_ for c in toks[:-1]] + [_lem(t)])
            dets = {_lem(c) for c in t.children if c.dep_ == "det"}
            if dets & {"the", "this", "that"} and label in seen:
                self.ent[t.i] = seen[label]  # definite mention of an earlier entity
                continue
            self.ent[t.i] = seen[label] = self.g.node(label, NodeType.OBJECT, [t] + comp)
        for i, nid in list(self.ent.items()):
            self._object_attributes(self.doc[i], nid)
        for q, head in self.alias.items():
            if _lem(self.doc[q]) not in lx.SILENT_QUANTIFIERS and head in self.ent:
                a = self.g.node(_lem(self.doc[q]), NodeType.ATTRIBUTE, [self.doc[q]])
                self.g.edge(self.ent[head], a, EdgeType.OBJ_ATTR)

    def _attr_node(self, adj: Token) -> int:
        mods = [c for c in adj.children if c.dep_ in ("advmod", "npadvmod") and _lem(c) not in lx.NEGATIONS]
        toks = sorted(mods + [adj], key=lambda x: x.i)
        return self.g.node(" ".join(x.lower_ for x in toks), NodeType.ATTRIBUTE, [adj] + mods)

    def _object_attributes(self, t: Token, nid: int) -> None:
        for c in t.children:
            if c.dep_ in ("amod", "nummod") or (c.dep_ == "compound" and c.pos_ == "NUM"):
                if _lem(c) in lx.COMPOUND_PREP_HEADS and any(p.dep_ == "prep" for p in c.children):
                    continue  # "next to" under a noun is a relation
                for a in _conjuncts(c):
                    self.g.edge(nid, self._attr_node(a), EdgeType.OBJ_ATTR)

    def resolve(self, t: Token) -> list[int]:
        """Object node ids a token stands for: itself, its conjuncts, pronoun antecedents, quantified heads."""
        out: list[int] = []
        for c in _conjuncts(t):
            i = self.alias.get(c.i, c.i)
            if i in self.ent:
                out.append(self.ent[i])
            elif c.pos_ == "PRON" and _lem(c) in lx.WH_WORDS and c.head.dep_ == "relcl":
                out += self.resolve(c.head.head)
            elif c.pos_ == "PRON" and _lem(c) in lx.PERSONAL_PRONOUNS:
                out += self._antecedent(c)
        return list(dict.fromkeys(out))

    def _antecedent(self, pron: Token) -> list[int]:
        """Cheap pronoun heuristic: nearest preceding object of the fitting kind, else nearest object."""
        want = lx.PERSONAL_PRONOUNS[_lem(pron)]
        before = sorted((i for i in self.ent if i < pron.i), reverse=True)
        if not before:
            return []

        def fits(i: int) -> bool:
            t, label = self.doc[i], self.g.labels[self.ent[i]]
            person = label.split()[-1] in lx.PERSON_WORDS
            return {"person": person, "plural": t.tag_ in ("NNS", "NNPS"), "thing": not person}[want]

        for i in before:
            if fits(i):
                return [self.ent[i]]
        return [self.ent[before[0]]]

    # -------------------------------------------------------------------------------------- predicates
    def _prep_phrase(self, p: Token) -> tuple[list[Token], list[Token]]:
        """(label tokens, object tokens) of a preposition, unfolding "in front of" phrasal nouns."""
        for o in p.children:
            if o.dep_ != "pobj":
                continue
            if self._phrasal_noun(o):
                inner_of = next(c for c in o.children if c.dep_ == "prep" and c.lower_ == "of")
                det = [c for c in o.children if c.dep_ == "det" and c.lower_ == "the"]
                return [p, *det, o, inner_of], [self._of_object(o)]
            return [p], [o]
        return [p], []

    def _subjects(self, v: Token, depth: int = 0) -> list[int]:
        if depth > 8:
            return []
        agent = [o for c in v.children if c.dep_ == "agent" for o in c.children if o.dep_ == "pobj"]
        if agent:
            return [n for a in agent for n in self.resolve(a)]
        for dep in ("nsubj", "nsubjpass"):
            subj = [c for c in v.children if c.dep_ == dep]
            if subj:
                return [n for s in subj for n in self.resolve(s)]
        if v.dep_ in ("acl", "relcl"):
            return self.resolve(v.head)
        if v.dep_ in ("conj", "xcomp", "advcl", "ccomp") and v.head.pos_ in ("VERB", "AUX"):
            return self._subjects(v.head, depth + 1)
        return []

    def _passive_patients(self, v: Token) -> list[int]:
        """The patient of a passive with an explicit agent ("the ball is kicked by a boy")."""
        if not any(c.dep_ == "agent" for c in v.children):
            return []
        pat = [c for c in v.children if c.dep_ == "nsubjpass"]
        if pat:
            return [n for p in pat for n in self.resolve(p)]
        return self.resolve(v.head) if v.dep_ == "acl" else []

    def _phrases(self, v: Token, base: list[Token]) -> list[tuple[list[Token], list[int]]]:
        """Argument phrases of a predicate: ``(label tokens, object node ids)``."""
        out: list[tuple[list[Token], list[int]]] = []
        objs = [n for c in v.children if c.dep_ in ("dobj", "dative", "oprd") for n in self.resolve(c)]
        objs += self._passive_patients(v)
        if objs:
            out.append((base, objs))
        heads = [v] + [c for c in v.children if c in base or (
            c.dep_ in ("advmod", "amod", "prep") and _lem(c) in lx.COMPOUND_PREP_HEADS
            and any(p.dep_ == "prep" for p in c.children))]
        for h in heads:
            for p in h.children:
                if p.dep_ != "prep":
                    continue
                words, otoks = self._prep_phrase(p)
                ids = [n for o in otoks if o is not None for n in self.resolve(o)]
                if ids:
                    extra = [h] if h != v and h not in base else []
                    out.append((base + extra + words, ids))
        return out

    def _adverbs(self, v: Token, base: list[Token]) -> list[int]:
        ids = []
        for c in v.children:
            if c.dep_ == "neg" or _lem(c) in lx.NEGATIONS:
                continue
            if c.dep_ not in ("advmod", "npadvmod") or c.pos_ != "ADV" or c in base:
                continue
            if _lem(c) in lx.WH_WORDS or c.tag_ in ("WRB", "WDT", "WP"):
                continue
            if any(p.dep_ == "prep" for p in c.children) and _lem(c) in lx.COMPOUND_PREP_HEADS:
                continue  # "next to" is part of a relation
            for a in _conjuncts(c):
                mods = [x for x in a.children if x.dep_ == "advmod"]  # "very" in "very hastily"
                toks = sorted([a] + mods, key=lambda x: x.i)
                ids.append(self.g.node(" ".join(x.lower_ for x in toks), NodeType.ADVERB, [a] + mods))
        return ids

    def _label(self, toks: list[Token], verb: Token | None) -> str:
        return " ".join(_lem(t) if verb is not None and t == verb else t.lower_ for t in toks)

    def _add_predicate(self, v: Token, copular: bool) -> None:
        subj = self._subjects(v)
        base = [] if copular else [v] + sorted((c for c in v.children if _is_particle(c, v)), key=lambda x: x.i)
        phrases = self._phrases(v, base)
        if copular:
            phrases = [(w, o) for w, o in phrases if w]
            if not phrases:
                return
        preds = []
        for words, objs in phrases or [(base, [])]:
            pid = self.g.node(self._label(words, None if copular else v), NodeType.RELATION, words)
            preds.append(pid)
            if not copular:
                self.verb_preds.add(pid)  # verb-headed: a "dynamic" predicate for PTC (docs/design/finsta-core.md B.4)
            for s in subj:
                if s not in objs:
                    self.g.edge(s, pid, EdgeType.SUBJ_PRED)
            for o in objs:
                self.g.edge(pid, o, EdgeType.PRED_OBJ)
        if any(c.dep_ == "neg" or _lem(c) in lx.NEGATIONS and c.dep_ == "advmod" for c in v.children):
            self.negated += preds
        if self.adverbs:
            for a in self._adverbs(v, base):
                for pid in preds:
                    self.g.edge(pid, a, EdgeType.PRED_ADV)

    def _add_predicative(self, v: Token) -> None:
        """acomp / copular attr of a linking verb -> attributes of the subject."""
        subj = self._subjects(v)
        for c in v.children:
            if c.dep_ == "acomp" or (c.dep_ == "attr" and self._copular_noun(c)):
                for a in _conjuncts(c):
                    aid = self._attr_node(a) if c.dep_ == "acomp" else self.g.node(_lem(a), NodeType.ATTRIBUTE, [a])
                    for s in subj:
                        self.g.edge(s, aid, EdgeType.OBJ_ATTR)

    def _add_predicates(self) -> None:
        for t in self.doc:
            if t.pos_ not in ("VERB", "AUX") or t.dep_ in ("aux", "auxpass", "amod", "compound"):
                continue
            linking = _lem(t) in lx.LINKING_VERBS and any(c.dep_ in ("acomp", "attr") for c in t.children)
            copula = _lem(t) == "be"
            if linking or copula:
                self._add_predicative(t)
            if copula or (t.pos_ == "AUX" and _lem(t) != "have"):
                self._add_predicate(t, copular=True)
            elif not (linking and not any(c.dep_ in ("dobj", "prep") for c in t.children)):
                self._add_predicate(t, copular=False)

    def _add_noun_relations(self) -> None:
        """Noun prepositional phrases ("a piano in the room", "a dog next to a cat") and possessives."""
        for i, nid in list(self.ent.items()):
            t = self.doc[i]
            heads = [t] + [c for c in t.children if c.dep_ in ("advmod", "amod", "prep")
                           and _lem(c) in lx.COMPOUND_PREP_HEADS and any(p.dep_ == "prep" for p in c.children)]
            for h in heads:
                for p in h.children:
                    if p.dep_ != "prep" or (p.lower_ == "of" and h == t and _lem(t) in lx.QUANTIFIER_NOUNS
                                            and _lem(t) not in lx.CONTAINER_NOUNS):
                        continue
                    words, otoks = self._prep_phrase(p)
                    objs = [n for o in otoks if o is not None for n in self.resolve(o)]
                    if objs:
                        words = ([h] if h != t else []) + words
                        rid = self.g.node(self._label(words, None), NodeType.RELATION, words)
                        self.g.edge(nid, rid, EdgeType.SUBJ_PRED)
                        for o in objs:
                            self.g.edge(rid, o, EdgeType.PRED_OBJ)
            for c in t.children:
                if c.dep_ == "poss":
                    owners = self.resolve(c)
                    if owners:
                        rid = self.g.node("have", NodeType.RELATION, [])
                        for o in owners:
                            self.g.edge(o, rid, EdgeType.SUBJ_PRED)
                        self.g.edge(rid, nid, EdgeType.PRED_OBJ)

    def run(self, caption: str | None = None) -> TextualSceneGraph:
        self._add_objects()
        self._add_noun_relations()
        self._add_predicates()
        dynamic = [i in self.verb_preds for i in range(len(self.g.labels))]
        meta = {"parser": "finsta-rules", "negated": sorted(set(self.negated)), "dynamic": dynamic}
        return self.g.build(self.doc.text if caption is None else caption, meta)

"""Caption grammar with paraphrases, and the exact TSG of every caption it produces.

Captions are realised left to right by a :class:`TSGBuilder`, which records every node as it writes its
words: objects (the noun), their attributes (colour, size), predicates (the verb words, canonical label
such as ``move left``), manner adverbs (``quickly`` -> ADVERB node, the paper's TSG retrofit, sec 3.2) and
spatial relations (``left of``). So every node span is exactly the words that express it, by construction.

Grammar (one clause per event; ``S`` = subject phrase, ``O`` = object phrase)::

    clause    := S [REL O] VERB-FORM [ADV]  |  S ADV VERB-FORM
    caption   := clause "."  |  clause ", then" clause "."  |  "After" clause "," clause "."
               |  clause "after" clause "."  |  "First" clause ", then" clause "."
               |  clause "while" clause "."  |  "While" clause "," clause "."
    paragraph := sentence ("Then" | "Next" | "After that" | "Meanwhile" | "Finally") sentence ...

Temporal connectives are not TSG nodes (Schuster et al.'s TSG has none); the event order they express is
kept in ``meta["event"]`` (event index of every predicate node) for the QA templates and the tests;
``meta["dynamic"]`` flags the event predicates (True for a RELATION node written for an event verb, False for
spatial relations and every other node), read by Finsta's PTC as the TSG's dynamic predicates.
"""

from __future__ import annotations

import numpy as np

from finsta_core.graphs.types import EdgeType, NodeType, TextualSceneGraph
from tasks.synthetic.scene import Clip, Event, relation
from tasks.synthetic.vocab import ADVERB_PARAPHRASES, RELATION_FORMS, RELATIONS, VERB_FORMS

_NO_SPACE_BEFORE = {",", ".", "?"}


class TSGBuilder:
    """Writes text word by word while recording TSG nodes (with character spans) and edges."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.text = ""
        self.labels: list[str] = []
        self.types: list[int] = []
        self.spans: list[tuple[int, int]] = []
        self.edges: list[tuple[int, int, int]] = []
        self.obj_of_node: list[int] = []  # clip object index (object / attribute nodes) or -1
        self.event_of_node: list[int] = []  # event index (predicate / adverb nodes) or -1
        self.entity: dict[int, int] = {}  # clip object index -> TSG object node

    def word(self, w: str) -> tuple[int, int]:
        if self.text and w not in _NO_SPACE_BEFORE:
            self.text += " "
        start = len(self.text)
        self.text += w
        return start, len(self.text)

    def words(self, ws: str) -> tuple[int, int]:
        spans = [self.word(w) for w in ws.split()]
        return spans[0][0], spans[-1][1]

    def node(self, label: str, ntype: NodeType, span: tuple[int, int], obj: int = -1, event: int = -1) -> int:
        self.labels.append(label)
        self.types.append(int(ntype))
        self.spans.append(span)
        self.obj_of_node.append(obj)
        self.event_of_node.append(event)
        return len(self.labels) - 1

    def edge(self, src: int, dst: int, etype: EdgeType) -> None:
        self.edges.append((src, dst, int(etype)))

    def noun_phrase(self, k: int, with_size: bool) -> int:
        """``the [size] colour category`` for clip object ``k``; nodes on its first mention only."""
        o = self.clip.objects[k]
        self.word("the")
        first = k not in self.entity
        attrs = []
        if with_size:
            attrs.append((o.size, self.word(o.size)))
        attrs.append((o.colour, self.word(o.colour)))
        noun = self.word(o.category)
        if first:
            self.entity[k] = self.node(o.category, NodeType.OBJECT, noun, obj=k)
            for label, span in attrs:
                self.edge(self.entity[k], self.node(label, NodeType.ATTRIBUTE, span, obj=k), EdgeType.OBJ_ATTR)
        return self.entity[k]

    def build(self, meta: dict | None = None) -> TextualSceneGraph:
        ei = [[s for s, _, _ in self.edges], [d for _, d, _ in self.edges]]
        text = self.text[:1].upper() + self.text[1:]
        # dynamic: the predicate nodes written for an event verb (move/approach/leave/jump/grow/stop), never a
        # spatial relation ("left of") or a non-relation node; finsta_core reads it as GraphBatch.tsg.dynamic (PTC)
        dynamic = [t == int(NodeType.RELATION) and e >= 0 for t, e in zip(self.types, self.event_of_node)]
        m = {"object": list(self.obj_of_node), "event": list(self.event_of_node), "dynamic": dynamic,
             **(meta or {})}
        return TextualSceneGraph(text, list(self.labels), self.types, ei, [t for _, _, t in self.edges],
                                 self.spans, m)


def needs_size(clip: Clip, k: int) -> bool:
    """Whether object ``k`` shares colour and category with another object (so its size disambiguates)."""
    o = clip.objects[k]
    return any(j != k and p.colour == o.colour and p.category == o.category for j, p in enumerate(clip.objects))


def np_text(clip: Clip, k: int, with_size: bool = False) -> str:
    o = clip.objects[k]
    size = f"{o.size} " if with_size or needs_size(clip, k) else ""
    return f"the {size}{o.colour} {o.category}"


def clear_relation(clip: Clip, a: int, b: int, t: int) -> str | None:
    """The relation of object ``a`` to ``b`` at frame ``t`` when its dominant axis is clear (ratio 1.5)."""
    d = clip.pos[t, a] - clip.pos[t, b]
    ax, ay = abs(d[0]), abs(d[1])
    if max(ax, ay) < 1.5 * min(ax, ay) or max(ax, ay) < 2.0:
        return None
    return RELATIONS[int(relation(clip.pos[t, a], clip.pos[t, b]))]


class CaptionGrammar:
    """Realises clauses, captions and paragraphs of a clip into a :class:`TSGBuilder`."""

    def __init__(self, clip: Clip, rng: np.random.Generator, relation_prob: float = 0.4,
                 size_prob: float = 0.3) -> None:
        self.clip, self.rng = clip, rng
        self.relation_prob, self.size_prob = relation_prob, size_prob
        self.b = TSGBuilder(clip)

    def _pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def subject(self, k: int, t: int, allow_relation: bool) -> int:
        node = self.b.noun_phrase(k, needs_size(self.clip, k) or self.rng.random() < self.size_prob)
        if allow_relation and self.rng.random() < self.relation_prob:
            others = [j for j in range(self.clip.n) if j != k]
            j = others[int(self.rng.integers(len(others)))]
            rel = clear_relation(self.clip, k, j, t)
            if rel is not None:
                r = self.b.node(rel, NodeType.RELATION, self.b.words(self._pick(RELATION_FORMS[rel])))
                self.b.edge(node, r, EdgeType.SUBJ_PRED)
                self.b.edge(r, self.b.noun_phrase(j, needs_size(self.clip, j)), EdgeType.PRED_OBJ)
        return node

    def clause(self, i: int, allow_relation: bool = True) -> None:
        """One event clause: subject, predicate (+ object), manner adverb before or after the verb."""
        ev: Event = self.clip.events[i]
        subj = self.subject(ev.actor, ev.start, allow_relation)
        form = self._pick(VERB_FORMS[ev.kind])
        adverb = self._pick(ADVERB_PARAPHRASES[ev.adverb])
        pre = len(form.split()) == 1 and "{" not in form and self.rng.random() < 0.35
        if pre:
            adv_span = self.b.word(adverb)
        head, _, tail = form.partition("{o}")
        pred_span = self.b.words(head.replace("{d}", ev.direction or "").strip())
        pred = self.b.node(ev.predicate, NodeType.RELATION, pred_span, event=i)
        self.b.edge(subj, pred, EdgeType.SUBJ_PRED)
        if "{o}" in form:
            self.b.edge(pred, self.b.noun_phrase(ev.target, needs_size(self.clip, ev.target)), EdgeType.PRED_OBJ)
        if not pre:
            adv_span = self.b.word(adverb)
        adv = self.b.node(ev.adverb, NodeType.ADVERB, adv_span, event=i)
        self.b.edge(pred, adv, EdgeType.PRED_ADV)

    def caption(self, events: list[int] | None = None) -> TextualSceneGraph:
        """Caption of one or two events (default: all events of a short clip) with a temporal connective."""
        ev = list(range(len(self.clip.events))) if events is None else list(events)
        if len(ev) == 1:
            self.clause(ev[0])
        elif len(ev) == 2:
            a, b = ev
            e1, e2 = self.clip.events[a], self.clip.events[b]
            if e2.start < e1.end:  # overlapping: "while"
                if self.rng.random() < 0.5:
                    self.clause(a), self.b.word("while"), self.clause(b, False)
                else:
                    self.b.word("while"), self.clause(a), self.b.word(","), self.clause(b, False)
                connective = "while"
            else:
                style = int(self.rng.integers(4))
                if style == 0:
                    self.clause(a), self.b.word(","), self.b.word("then"), self.clause(b, False)
                elif style == 1:
                    self.b.word("first"), self.clause(a), self.b.word(","), self.b.word("then"), self.clause(b, False)
                elif style == 2:
                    self.b.word("after"), self.clause(a), self.b.word(","), self.clause(b, False)
                else:
                    self.clause(b), self.b.word("after"), self.clause(a, False)
                connective = ("then", "then", "after", "after")[style]
            self.b.word(".")
            return self.b.build({"connective": connective})
        else:
            raise ValueError(f"a caption describes one or two events, got {len(ev)}; use paragraph()")
        self.b.word(".")
        return self.b.build({"connective": ""})

    def paragraph(self) -> TextualSceneGraph:
        """One sentence per event in time order, linked by connectives; ``meta["sentences"]`` holds each
        sentence's character span and event index."""
        sentences = []
        n = len(self.clip.events)
        for i, ev in enumerate(self.clip.events):
            start = len(self.b.text) + (1 if self.b.text else 0)
            if i > 0:
                prev = self.clip.events[i - 1]
                if ev.start < prev.end:
                    self.b.word("meanwhile"), self.b.word(",")
                elif i == n - 1 and n > 2:
                    self.b.word("finally"), self.b.word(",")
                else:
                    self.b.words(self._pick(["then", "next", "after that ,"]))
            self.clause(i, allow_relation=i == 0)
            self.b.word(".")
            sentences.append([start, len(self.b.text), i])
        tsg = self.b.build({"connective": "paragraph", "sentences": sentences})
        tsg.caption = _capitalise_sentences(tsg.caption)
        return tsg


def _capitalise_sentences(text: str) -> str:
    chars = list(text)
    up = True
    for k, c in enumerate(chars):
        if up and c.isalpha():
            chars[k], up = c.upper(), False
        elif c == ".":
            up = True
    return "".join(chars)


def caption(clip: Clip, rng: np.random.Generator, relation_prob: float = 0.4, size_prob: float = 0.3,
            events: list[int] | None = None) -> TextualSceneGraph:
    """A caption of ``clip`` (one or two events) and its exact TSG."""
    return CaptionGrammar(clip, rng, relation_prob, size_prob).caption(events)


def paragraph(clip: Clip, rng: np.random.Generator, relation_prob: float = 0.4,
              size_prob: float = 0.3) -> TextualSceneGraph:
    """A paragraph (one sentence per event) of a long clip and its exact TSG."""
    return CaptionGrammar(clip, rng, relation_prob, size_prob).paragraph()

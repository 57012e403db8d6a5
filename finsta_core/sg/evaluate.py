"""Tuple F1 for textual scene graphs (SPICE-style set matching after lemmatisation).

Tuple kinds:
    object    ``(o,)``
    attribute ``(o, a)``: object attributes, and predicates with a single argument (intransitive ``(subj,
              verb)``, agentless passive ``(patient, verb)``) mapped to attribute tuples as FACTUAL does
    relation  ``(s, p, o)``
    adverb    ``(p, adv)``: the paper's predicate attributes (sec 3.2)

Gold files are JSONL, one caption per line: ``{"caption": str, "object": [[o], ...], "attribute": [[o, a],
...], "relation": [[s, p, o], ...], "adverb": [[p, adv], ...]}`` (lemmatised labels; missing keys = empty).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from finsta_core.graphs.types import EdgeType, NodeType, TextualSceneGraph

KINDS = ("object", "attribute", "relation", "adverb")
Tuples = dict[str, set[tuple[str, ...]]]

GOLD_TSG_PATH = os.path.join(os.path.dirname(__file__), "data", "gold_tsg.jsonl")


def tsg_tuples(tsg: TextualSceneGraph) -> Tuples:
    """Tuples of a TSG; predicates with several subjects / objects give their cross product."""
    lab, nt = tsg.labels, tsg.node_type.tolist()
    out: Tuples = {k: set() for k in KINDS}
    out["object"] = {(lab[i],) for i, t in enumerate(nt) if t == NodeType.OBJECT}
    subj: dict[int, list[int]] = {}
    obj: dict[int, list[int]] = {}
    for (s, t), e in zip(tsg.edge_index.T.tolist(), tsg.edge_type.tolist()):
        if e == EdgeType.OBJ_ATTR:
            out["attribute"].add((lab[s], lab[t]))
        elif e == EdgeType.SUBJ_PRED:
            subj.setdefault(t, []).append(s)
        elif e == EdgeType.PRED_OBJ:
            obj.setdefault(s, []).append(t)
        elif e == EdgeType.PRED_ADV:
            out["adverb"].add((lab[s], lab[t]))
    for p in (i for i, t in enumerate(nt) if t == NodeType.RELATION):
        ss, oo = subj.get(p, []), obj.get(p, [])
        if ss and oo:
            out["relation"] |= {(lab[s], lab[p], lab[o]) for s in ss for o in oo}
        else:
            out["attribute"] |= {(lab[x], lab[p]) for x in ss + oo}
    return out


def read_gold(path: str | os.PathLike = GOLD_TSG_PATH) -> list[dict[str, Any]]:
    """Read a gold JSONL file; raise ``ValueError`` naming the file and line of a malformed record."""
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            if not isinstance(r.get("caption"), str) or not r["caption"].strip():
                raise ValueError(f"{path}:{n}: record has no non-empty 'caption'")
            arity = {"object": 1, "attribute": 2, "relation": 3, "adverb": 2}
            for k, a in arity.items():
                for tup in r.get(k, []):
                    if not isinstance(tup, list) or len(tup) != a or not all(isinstance(x, str) for x in tup):
                        raise ValueError(f"{path}:{n}: {k} tuple {tup!r} must be a list of {a} strings")
            records.append(r)
    return records


def gold_tuples(record: dict[str, Any]) -> Tuples:
    return {k: {tuple(t) for t in record.get(k, [])} for k in KINDS}


def make_normalizer(nlp: Any | None, strings: Iterable[str]) -> Callable[[str], str]:
    """Lower-case, collapse spaces, drop articles, and (with ``nlp``) lemmatise every word of a label."""
    def base(s: str) -> str:
        return " ".join(w for w in s.lower().split() if w not in ("a", "an", "the"))

    if nlp is None:
        return base
    uniq = sorted({base(s) for s in strings})
    table = {s: " ".join(t.lemma_.lower() or t.lower_ for t in d) for s, d in zip(uniq, nlp.pipe(uniq))}
    return lambda s: table.get(base(s), base(s))


def tuple_f1(pred: Sequence[Tuples], gold: Sequence[Tuples], nlp: Any | None = None) -> dict[str, dict[str, float]]:
    """Micro precision / recall / F1 per tuple kind and over all kinds (``"all"``)."""
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold records")
    strings = {x for tups in (*pred, *gold) for k in KINDS for t in tups[k] for x in t}
    norm = make_normalizer(nlp, strings)
    counts = {k: [0, 0, 0] for k in (*KINDS, "all")}  # true positives, predicted, gold
    for p, g in zip(pred, gold):
        for k in KINDS:
            ps = {tuple(norm(x) for x in t) for t in p[k]}
            gs = {tuple(norm(x) for x in t) for t in g[k]}
            for key in (k, "all"):
                counts[key][0] += len(ps & gs)
                counts[key][1] += len(ps)
                counts[key][2] += len(gs)
    out = {}
    for k, (tp, np_, ng) in counts.items():
        prec = tp / np_ if np_ else 0.0
        rec = tp / ng if ng else 0.0
        out[k] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                  "n_pred": np_, "n_gold": ng}
    return out


def compare_parsers(gold_path: str | os.PathLike = GOLD_TSG_PATH, nlp: Any = None, repeats: int = 3,
                    spacy_model: str | None = None) -> dict[str, Any]:
    """Score the Finsta rules and the SceneGraphParser baseline on the same captions in one run.

    Throughput is captions per second, end to end (``nlp.pipe`` parse + rules), best of ``repeats``;
    ``rules_per_s`` times the rules alone on pre-parsed docs.
    """
    from finsta_core.sg.baseline import baseline_tuples
    from finsta_core.sg.tsg import TSGParser, TSGParserConfig, load_spacy

    nlp = nlp if nlp is not None else load_spacy(spacy_model or TSGParserConfig.spacy_model)
    gold = read_gold(gold_path)
    caps = [r["caption"] for r in gold]
    gt = [gold_tuples(r) for r in gold]
    parser = TSGParser(nlp=nlp)
    systems: dict[str, Callable[[Any, str], Tuples]] = {
        "finsta_rules": lambda d, c: tsg_tuples(parser.from_doc(d, c)),
        "sceneparser_baseline": lambda d, c: baseline_tuples(d),
    }
    report: dict[str, Any] = {"n_captions": len(caps), "gold": os.fspath(gold_path),
                              "spacy_model": nlp.meta.get("name", "?"), "systems": {}}
    docs = list(nlp.pipe(caps))
    for name, fn in systems.items():
        preds = [fn(d, c) for d, c in zip(docs, caps)]
        e2e, rules = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            [fn(d, c) for d, c in zip(nlp.pipe(caps), caps)]
            e2e.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            [fn(d, c) for d, c in zip(docs, caps)]
            rules.append(time.perf_counter() - t0)
        report["systems"][name] = {"f1": tuple_f1(preds, gt, nlp), "captions_per_s": len(caps) / min(e2e),
                                   "rules_per_s": len(caps) / max(min(rules), 1e-9)}
    return report


def format_report(report: dict[str, Any]) -> str:
    """Markdown table of :func:`compare_parsers` output."""
    lines = [f"{report['n_captions']} captions, spaCy model {report['spacy_model']}", "",
             "| system | " + " | ".join(f"{k} F1" for k in (*KINDS, "all")) + " | captions/s | rules only/s |",
             "|---" * (len(KINDS) + 4) + "|"]
    for name, r in report["systems"].items():
        f1 = " | ".join(f"{100 * r['f1'][k]['f1']:.1f}" for k in (*KINDS, "all"))
        lines.append(f"| {name} | {f1} | {r['captions_per_s']:.0f} | {r['rules_per_s']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m finsta_core.sg.evaluate [GOLD.jsonl]
    import sys

    print(format_report(compare_parsers(sys.argv[1] if len(sys.argv) > 1 else GOLD_TSG_PATH)))

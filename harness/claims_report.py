"""The claims report: Markdown (protocol, decision rule, per-task results, verdicts, caveats) and PNG figures.

``write_report(frame, sw, out_md, timings=...)`` renders :func:`harness.claims_stats.evaluate_claims` of a store's
tidy frame; every file is written atomically. Figures (matplotlib Agg) go next to the Markdown file.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.claims_stats import ClaimResult, Test, evaluate_claims, gain_table, headline_scores, select
from harness.store import RunStore, atomic_write_bytes, atomic_write_text

__all__ = ["DECISION_RULE", "stage_timings", "render_report", "write_report"]

DECISION_RULE = """\
For every claim the unit of replication is the seed: the host and the Finsta-host of one seed share the same
pre-trained checkpoint, so a *gain* is the paired difference `score(Finsta-host, seed) - score(host, seed)`.
Scores are the task type's headline metric in percentage points ({headline}). Pooled gains average the gains of
the claim's (task, mode) cells per seed, over seeds measured in every cell. Claims that compare gains use
per-seed differences of pooled gains (claim 4: `drop_a = Finsta-host(full) - Finsta-host(w/o a)`; claim 5: the
per-seed least-squares slope of the pooled gain against the number of events / the SG corruption rate).
For each such vector of per-seed values the {level:.0%} interval of its mean ({method}) decides: **supported**
if the interval lies entirely on the claimed side of 0, **not supported** if entirely on the opposite side,
**inconclusive** otherwise (also with fewer than 2 seeds). A claim made of several comparisons is supported if
all are, not supported if any is, inconclusive otherwise. The protocol was fixed before the runs; no number is
tuned toward the paper's."""


def stage_timings(store: str | Path) -> pd.DataFrame:
    """Wall seconds of every run in the store: ``run_id, host, task, mode, total_s``."""
    st = RunStore(store)
    rows = []
    for run_id, spec, status in st.iter_runs():
        t = st.read_json(run_id, "timings.json") or {}
        if status.get("state") == "finished" and "total_s" in t:
            rows.append({"run_id": run_id, "host": spec.get("host"), "task": spec.get("task"),
                         "mode": spec.get("mode"), "total_s": float(t["total_s"])})
    return pd.DataFrame(rows, columns=["run_id", "host", "task", "mode", "total_s"])


def _ms(values: pd.Series | list[float]) -> str:
    x = np.asarray(list(values), dtype=float)
    if len(x) == 0:
        return "–"
    return f"{x.mean():.1f} ± {x.std(ddof=1):.1f}" if len(x) > 1 else f"{x.mean():.1f}"


def _ci(t: Test) -> str:
    lo, hi = t.ci
    return "–" if math.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"


def _test_row(t: Test) -> str:
    mean = "–" if not t.values else f"{t.mean:+.2f}"
    std = "–" if t.n < 2 else f"{t.std:.2f}"
    side = "> 0" if t.side > 0 else "< 0"
    return f"| {t.label} | {side} | {mean} | {std} | {_ci(t)} | {t.n} | {t.verdict} |"


def results_table(scores: pd.DataFrame, sw: dict[str, Any]) -> str:
    """Per (host, task, mode) of the main arm: host and Finsta-host mean ± std over seeds, gain, interval."""
    lines = ["| host | task | type | mode | host score | Finsta-host score | gain (pp) | 95% CI | n |",
             "|:--|:--|:--|:--|--:|--:|--:|--:|--:|"]
    gains = gain_table(scores, sw)
    fin, hst = (select(scores, finsta=f, param="main", value="full") for f in (True, False))
    for key in sorted(set(k[:4] for k in gains.index), key=lambda k: (sw["hosts"].index(k[0]), k[1], k[2], k[3])):
        g = gains.loc[key]
        d = sw["decision"]
        t = Test("", [float(v) for v in g.to_numpy()], +1, float(d["level"]), str(d["method"]))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {_ms(hst.loc[key])} | {_ms(fin.loc[key])} | "
                     f"{_ms(g)} | {_ci(t)} | {len(g)} |")
    return "\n".join(lines)


def _claim_md(c: ClaimResult) -> str:
    head = ["| comparison | claimed | mean | std | 95% CI | seeds | verdict |", "|:--|:-:|--:|--:|--:|--:|:--|"]
    parts = [f"### Claim {c.key}: {c.title} — **{c.verdict}**", ""]
    if c.note:
        parts += [c.note + ".", ""]
    if c.tests:
        parts += ["Tests deciding the verdict:", "", *head, *(_test_row(t) for t in c.tests), ""]
    else:
        parts += ["Not measured by this protocol (no arm for it): inconclusive.", ""]
    if c.extra:
        parts += ["Reported alongside (not part of the verdict):", "", *head, *(_test_row(t) for t in c.extra), ""]
    return "\n".join(parts)


def _savefig(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue()) or path


def _ci_bars(tests: list[Test]) -> tuple[list[float], np.ndarray]:
    """Means and matplotlib ``yerr`` ``[2, n]`` of the tests' decision intervals (the verdicts' intervals, not
    ± std); a test with fewer than two seeds gets no bar."""
    means = [t.mean if t.values else float("nan") for t in tests]
    err = np.zeros((2, len(tests)))
    for i, t in enumerate(tests):
        lo, hi = t.ci
        if not math.isnan(lo):
            err[:, i] = (t.mean - lo, hi - t.mean)
    return means, err


def _seed_test(values: pd.Series, sw: dict[str, Any]) -> Test:
    """A :class:`Test` of per-seed values (index level ``seed``) with the protocol's decision rule."""
    d = sw["decision"]
    per_seed = values.groupby(level="seed").mean() if len(values) else values
    return Test("", [float(v) for v in per_seed.to_numpy()], +1, float(d["level"]), str(d["method"]))


def figures(scores: pd.DataFrame, sw: dict[str, Any], claims: list[ClaimResult], out_dir: Path,
            stem: str) -> dict[str, Path]:
    """Gain per task type (per host and mode), ablation drops, gain vs num_events and vs SG corruption."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out: dict[str, Path] = {}
    gains = gain_table(scores, sw)
    if not gains.empty:
        cells = sorted(set(zip(gains.index.get_level_values("task_type"), gains.index.get_level_values("mode"))))
        types = sorted({c[0] for c in cells})
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True, squeeze=False)
        for ax, mode in zip(axes[0], ("finetune", "zeroshot")):
            w = 0.8 / max(1, len(sw["hosts"]))
            for i, h in enumerate(sw["hosts"]):
                lv = gains.index.get_level_values
                sub = gains[(lv("host") == h) & (lv("mode") == mode)]
                tl = sub.index.get_level_values("task_type")
                m, err = _ci_bars([_seed_test(sub[tl == tt], sw) for tt in types])
                ax.bar(np.arange(len(types)) + (i - (len(sw["hosts"]) - 1) / 2) * w, m, w, yerr=err, capsize=2,
                       label=h)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(range(len(types)), types, rotation=30, ha="right", fontsize=8)
            ax.set_title(f"{mode}: Finsta-host − host (mean, {_level(sw)} interval over seeds)", fontsize=9)
            ax.set_ylabel("gain (pp)")
            ax.legend(fontsize=7)
        out["gain per task type"] = _savefig(fig, out_dir / f"{stem}_gain_per_task.png")
    for key, title in (("4", "Ablations: Finsta-host (full) − Finsta-host (w/o component)"), ("5", "")):
        c = next(c for c in claims if c.key == key)
        if key == "4" and c.extra:
            fig, ax = plt.subplots(figsize=(6, 3.5))
            lab = [t.label.replace("drop: ", "") for t in c.extra]
            m, err = _ci_bars(c.extra)
            ax.bar(range(len(lab)), m, yerr=err, capsize=3, color="tab:orange")
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(range(len(lab)), lab, rotation=20, fontsize=8)
            ax.set_ylabel("drop of pooled score (pp)")
            ax.set_title(title, fontsize=9)
            out["ablation drops"] = _savefig(fig, out_dir / f"{stem}_ablation.png")
        if key == "5":
            for xlabel, name in (("num_events", "events"), ("SG corruption rate", "sg")):
                rows = [t for t in c.extra
                        if t.label.startswith("gain at ") and (("events" in t.label) == (name == "events"))]
                if len(rows) < 2:
                    continue
                xs = [float(t.label.split("=")[-1]) if name == "sg" else float(t.label.split()[2]) for t in rows]
                fig, ax = plt.subplots(figsize=(5, 3.5))
                m, err = _ci_bars(rows)
                ax.errorbar(xs, m, yerr=err, marker="o", capsize=3)
                ax.axhline(0, color="k", lw=0.8)
                ax.set_xlabel(xlabel)
                ax.set_ylabel(f"pooled gain (pp), mean, {_level(sw)} interval")
                ax.set_title(f"Finsta-host − host vs {xlabel}", fontsize=9)
                out[f"gain vs {xlabel}"] = _savefig(fig, out_dir / f"{stem}_gain_vs_{name}.png")
    arms = [c for c in claims if c.key == "P" or c.key.startswith("C:")]
    if arms:  # positive control and the other control arms beside the main arm, per task type
        main = next(c for c in claims if c.key == "1")
        series = [("Finsta (main)", main.tests)] + [(c.key.removeprefix("C:") if c.key != "P" else
                                                     c.title.split("(")[1].split(")")[0], c.tests) for c in arms]
        types = sorted({t.label.split(":")[0] for _, tests in series for t in tests})
        fig, ax = plt.subplots(figsize=(8, 3.8))
        w = 0.8 / len(series)
        for i, (name, tests) in enumerate(series):
            by = {t.label.split(":")[0]: t for t in tests}
            m, err = _ci_bars([by.get(tt, Test("", [], +1)) for tt in types])
            ax.bar(np.arange(len(types)) + (i - (len(series) - 1) / 2) * w, m, w, yerr=err, capsize=2, label=name)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(types)), types, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("gain over the control (pp)")
        ax.set_title(f"{sw['reference_host']}: arm − step-matched control (mean, {_level(sw)} interval)", fontsize=9)
        ax.legend(fontsize=7)
        out["controls"] = _savefig(fig, out_dir / f"{stem}_controls.png")
    return out


def _level(sw: dict[str, Any]) -> str:
    return f"{100 * float(sw['decision']['level']):.0f}%"


def _protocol_md(sw: dict[str, Any], timings: pd.DataFrame | None) -> str:
    st = sw.get("studies") or {}
    lines = [f"- hosts: {', '.join(sw['hosts'])} (reference host for claims 1, 2, 4, 5: `{sw['reference_host']}`)",
             f"- seeds: {sw['seeds']}", f"- tasks: {', '.join(sw['tasks'])}; modes: {', '.join(sw['modes'])}",
             f"- config overrides: `{' '.join(sw.get('overrides') or [])}`; corpus options "
             f"`{sw.get('corpus_options') or {}}`; evaluation options `{sw.get('eval_options') or {}}`"]
    if "ablation" in st:
        a = st["ablation"]
        lines.append(f"- ablation arms ({', '.join(a['tasks'])}; {', '.join(a.get('modes', sw['modes']))}): "
                     + ", ".join(f"`{x['name']}` ({' '.join(x.get('overrides') or [])})" for x in a["arms"]))
    if "controls" in st:
        a = st["controls"]
        lines.append(f"- control arms ({', '.join(a['tasks'])}; {', '.join(a.get('modes', sw['modes']))}; "
                     "compared with the main arm's step-matched control): "
                     + ", ".join(f"`{x['name']}` ({' '.join(x.get('overrides') or [])})"
                                 + (" **positive control**" if x.get("positive_control") else "") for x in a["arms"]))
    if "events" in st:
        e = st["events"]
        lines.append(f"- events study: {', '.join(e['tasks'])} evaluated with num_events in {e['values']} "
                     f"({', '.join(e.get('modes', sw['modes']))})")
    if "sg_noise" in st:
        s = st["sg_noise"]
        lines.append(f"- SG-corruption study: post-training corpus with sg_noise {s.get('kind', 'drop')} in "
                     f"{s['values']} (0 = the main arm), evaluated on {', '.join(s['tasks'])} "
                     f"({', '.join(s.get('modes', sw['modes']))})")
    if timings is not None and not timings.empty:
        by = timings.groupby("mode")["total_s"].agg(["count", "mean", "sum"])
        lines.append(f"- measured compute (this store, finished runs): {timings['total_s'].sum() / 60:.1f} min over "
                     f"{len(timings)} runs; " + "; ".join(f"{m}: {int(r['count'])} runs, {r['mean']:.0f} s each"
                                                       for m, r in by.iterrows()))
    if sw.get("notes"):
        lines += ["", " ".join(str(sw["notes"]).split())]
    return "\n".join(lines)


def _caveats(frame: pd.DataFrame, scores: pd.DataFrame, sw: dict[str, Any]) -> str:
    out = []
    bad = frame[frame["status"].isin(["failed", "incomplete", "running", "pending"])].drop_duplicates("run_id")
    if len(bad):
        out.append(f"{len(bad)} run(s) are not finished ({', '.join(sorted(set(bad['status'])))}); their cells are "
                   "missing from the statistics (never scored as 0).")
    seeds = sorted(set(scores["seed"])) if len(scores) else []
    out.append(f"{len(seeds)} seed(s) measured ({seeds}); with few seeds the t interval is wide, so "
               "'inconclusive' mostly means 'not enough evidence', not 'no effect'.")
    out.append("Seeds vary model initialisation and data order; the synthetic splits are fixed by the benchmark's "
               "own seed, so the spread does not include test-set sampling variance.")
    host_main = select(scores, finsta=False, param="main", value="full") if len(scores) else pd.Series(dtype=float)
    if len(host_main):
        worst = host_main.groupby(level=["host", "task", "mode"]).mean().sort_values().head(3)
        out.append("Lowest host scores (a host near chance leaves little for Finsta to transfer): "
                   + ", ".join(f"{h}/{t}/{m} {v:.1f}" for (h, t, m), v in worst.items()) + ".")
    if len(scores):
        main = scores[(scores["sweep_param"] == "main") & (scores["sweep_value"] == "full")]
        dead = main.groupby(["host", "task", "mode"])["score"].agg(lambda v: bool((v == 0).all()))
        if dead.any():
            out.append("Cells where host and Finsta-host score 0 in every seed carry no information but still enter "
                       "the pooled means (as a gain of 0): " + ", ".join("/".join(k) for k in dead[dead].index) + ".")
    out.append("Finsta is post-trained once on `synth_pairs` and evaluated on every task (retrieval-family TRS "
               "weights); the paper post-trains per target dataset and uses far larger hosts and corpora.")
    return "\n".join(f"- {x}" for x in out)


def render_report(frame: pd.DataFrame, sw: dict[str, Any], out_md: str | Path,
                  timings: pd.DataFrame | None = None) -> str:
    """The report's Markdown (figures are written next to ``out_md`` as a side effect)."""
    out_md = Path(out_md)
    scores = headline_scores(frame, sw["headline"])
    claims = evaluate_claims(frame, sw)
    figs = figures(scores, sw, claims, out_md.parent, out_md.stem)
    d = sw["decision"]
    head = ", ".join(f"{k}: {'/'.join(v)}" for k, v in sw["headline"].items())
    rule = DECISION_RULE.format(headline=head, level=float(d["level"]),
                                method="Student t, n−1 d.o.f." if d["method"] == "t" else "paired bootstrap")
    verdicts = ["| claim | verdict | deciding comparisons (mean [95% CI], seeds) |", "|:--|:--|:--|"]
    for c in claims:
        detail = "; ".join(f"{t.label}: {t.mean:+.2f} {_ci(t)} n={t.n}" if t.n else f"{t.label}: not measured"
                           for t in c.tests) or "not measured"
        verdicts.append(f"| ({c.key}) {c.title} | **{c.verdict}** | {detail} |")
    md = [f"# Synthetic claims study: `{sw['name']}`", "", " ".join(str(sw.get("description", "")).split()), "",
          "## Verdicts", "", *verdicts, "", "## Protocol", "", _protocol_md(sw, timings), "", "## Decision rule", "",
          rule, "", "## Per-task results (main arm)", "", results_table(scores, sw) if len(scores) else "no results",
          ""]
    gate = next((c for c in claims if c.key == "P"), None)
    if gate is not None:
        passing = [t.label.split(":")[0] for t in gate.tests if t.verdict == "supported"]
        md += ["## Can this benchmark test Finsta?", "",
               (f"Yes, on the task types where the positive control's interval lies above 0 "
                f"({', '.join(passing)}): a teacher built from the exact scene graphs, distilled through the same "
                "TRS channel into the same host, beats the step-matched control there; elsewhere a null result for "
                "Finsta says nothing about the method." if gate.verdict == "supported" else
                "**No.** The positive control (a teacher built from the exact scene graphs, distilled through the "
                "same TRS channel into the same host) does not beat the step-matched control with its interval "
                "above 0 on any task type, so a null result for Finsta here says nothing about the method."), ""]
    md += ["## Claims", "", *(_claim_md(c) for c in claims)]
    if figs:
        md += ["## Figures", ""] + [f"![{k}]({p.name})\n" for k, p in figs.items()]
    for extra in sw.get("appendix") or []:  # measured fragments kept beside the verdicts (ceilings, diagnostics)
        path = Path(extra)
        md += [path.read_text(encoding="utf-8").rstrip(), ""] if path.exists() else [f"(missing: `{extra}`)", ""]
    md += ["## Caveats", "", _caveats(frame, scores, sw), ""]
    return "\n".join(md)


def write_report(frame: pd.DataFrame, sw: dict[str, Any], out_md: str | Path,
                 timings: pd.DataFrame | None = None) -> Path:
    """Render and write the report atomically; returns its path."""
    text = render_report(frame, sw, out_md, timings)
    atomic_write_text(out_md, text)
    return Path(out_md)


def verdict_lines(claims: list[ClaimResult]) -> list[str]:
    """One line per claim (CLI summary)."""
    return [f"({c.key}) {c.verdict:13s} {c.title}" for c in claims]


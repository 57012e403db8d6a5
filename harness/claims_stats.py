"""Statistics of the synthetic claims study (issue 7): headline scores, paired gains, the decision rule.

Every comparison is *paired by seed*: the Finsta-host and the host of one seed share the pre-trained
checkpoint, so ``gain[s] = score(Finsta-host, s) - score(host, s)``; comparisons of gains (zero-shot vs
fine-tune, full host vs hosts missing encoders, ablations, events, SG corruption) are per-seed differences
of such gains. A test's statistic is the vector of per-seed values; its two-sided interval at ``level``
(Student t, or a percentile bootstrap of the mean) decides:

* ``supported``     -- the interval lies entirely on the claimed side of 0;
* ``not supported`` -- it lies entirely on the opposite side;
* ``inconclusive``  -- it contains 0 (or fewer than two seeds were measured).

A claim made of several tests is supported when all are, not supported when any is, else inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SUPPORTED", "NOT_SUPPORTED", "INCONCLUSIVE", "Test", "ClaimResult", "t_quantile", "interval", "decide",
           "combine", "headline_scores", "select", "paired_gains", "pooled", "slopes", "gain_table", "evaluate_claims",
           "control_claims"]

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
KEYS = ["host", "task", "task_type", "mode", "seed"]


def _t_cdf(x: float, df: float) -> float:
    """Student t CDF by Simpson integration of the density on [0, |x|] (no SciPy dependency)."""
    if x == 0:
        return 0.5
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    grid = np.linspace(0.0, abs(x), 4001)
    pdf = c * (1 + grid**2 / df) ** (-(df + 1) / 2)
    h = grid[1] - grid[0]
    area = h / 3 * (pdf[0] + pdf[-1] + 4 * pdf[1:-1:2].sum() + 2 * pdf[2:-1:2].sum())
    return 0.5 + math.copysign(area, x)


def t_quantile(p: float, df: float) -> float:
    """Quantile ``p`` (0 < p < 1) of Student's t with ``df`` degrees of freedom (bisection on the CDF)."""
    if not 0 < p < 1 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def interval(values: Sequence[float], level: float = 0.95, method: str = "t", n_boot: int = 10000,
             seed: int = 0) -> tuple[float, float]:
    """Two-sided ``level`` interval of the mean of ``values`` (NaN, NaN with fewer than two values)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    m = float(x.mean())
    if method == "t":
        half = t_quantile(0.5 + level / 2, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
        return m - half, m + half
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
        return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, 0.5 + level / 2))
    raise ValueError(f"unknown interval method {method!r} (t | bootstrap)")


@dataclass
class Test:
    """One paired comparison: per-seed ``values``, the claimed ``side`` (+1: > 0, -1: < 0) and its verdict."""

    label: str
    values: list[float]
    side: int = 1
    level: float = 0.95
    method: str = "t"
    seeds: list[int] = field(default_factory=list)
    unit: str = "pp"

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return interval(self.values, self.level, self.method)

    @property
    def verdict(self) -> str:
        return decide(self.values, self.side, self.level, self.method)


@dataclass
class ClaimResult:
    """A claim of the paper, its tests and the combined verdict (or ``INCONCLUSIVE`` with a reason)."""

    key: str
    title: str
    tests: list[Test]
    note: str = ""
    extra: list[Test] = field(default_factory=list)  # reported, not part of the verdict
    rule: str = "all"  # "all": every test must hold (:func:`combine`); "any": one supported test suffices

    @property
    def verdict(self) -> str:
        if not self.tests:
            return INCONCLUSIVE
        verdicts = [t.verdict for t in self.tests]
        if self.rule == "any":
            if SUPPORTED in verdicts:
                return SUPPORTED
            return NOT_SUPPORTED if all(v == NOT_SUPPORTED for v in verdicts) else INCONCLUSIVE
        return combine(verdicts)


def decide(values: Sequence[float], side: int = 1, level: float = 0.95, method: str = "t") -> str:
    """The decision rule (module docstring) for one vector of per-seed differences."""
    lo, hi = interval(values, level, method)
    if math.isnan(lo):
        return INCONCLUSIVE
    lo, hi = (lo, hi) if side > 0 else (-hi, -lo)
    if lo > 0:
        return SUPPORTED
    if hi < 0:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """All supported -> supported; any not supported -> not supported; else inconclusive."""
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return NOT_SUPPORTED if NOT_SUPPORTED in verdicts else INCONCLUSIVE


# -- frames --------------------------------------------------------------------------------------------
def headline_scores(frame: pd.DataFrame, headline: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """One row per finished evaluation run: ``score`` = mean of the task type's headline metrics.

    Columns: ``run_id, host, finsta, task, task_type, mode, seed, ablation, sweep_param, sweep_value, score``.
    A run missing one of its headline metrics is dropped (never scored as 0).
    """
    cols = ["run_id", "host", "finsta", "task", "task_type", "mode", "seed", "ablation", "sweep_param",
            "sweep_value", "score"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    df = frame[(frame["status"] == "finished") & frame["mode"].isin(["finetune", "zeroshot"])
               & frame["metric"].ne("")].copy()
    df = df[[m in headline.get(t, ()) for t, m in zip(df["task_type"], df["metric"])]]
    if df.empty:
        return pd.DataFrame(columns=cols)
    keys = cols[:-1]
    g = df.groupby(keys, dropna=False)["value"].agg(["mean", "count"]).reset_index()
    need = g["task_type"].map(lambda t: len(headline.get(t, ())))
    g = g[g["count"] == need].rename(columns={"mean": "score"})
    g["seed"] = g["seed"].astype(int)
    return g[cols].reset_index(drop=True)


def select(scores: pd.DataFrame, *, finsta: bool, param: str, value: str, ablation: str = "",
           host: str | None = None) -> pd.DataFrame:
    """Rows of one arm (``sweep_param``/``sweep_value`` labels), Finsta-host or host, indexed by :data:`KEYS`."""
    m = (scores["finsta"] == finsta) & (scores["sweep_param"] == param) & (scores["sweep_value"] == str(value))
    m &= scores["ablation"] == (ablation if finsta else "")
    if host is not None:
        m &= scores["host"] == host
    out = scores[m].drop_duplicates(KEYS, keep="last")
    return out.set_index(KEYS)["score"]


def paired_gains(finsta: pd.Series, host: pd.Series) -> pd.Series:
    """``finsta - host`` on the (host, task, task_type, mode, seed) keys both have."""
    both = finsta.index.intersection(host.index)
    return (finsta.loc[both] - host.loc[both]).sort_index()


def pooled(values: pd.Series, over: Sequence[str] = ("task", "mode")) -> pd.Series:
    """Per-seed mean over the ``over`` levels, on complete cases only: a seed missing any cell that another
    seed has is dropped, so every pooled value averages the same set of (task, mode) cells."""
    if values.empty:
        return pd.Series(dtype=float)
    wide = values.reset_index().pivot_table(index="seed", columns=list(over), values=values.name or 0,
                                            aggfunc="mean")
    return wide.dropna(axis=0, how="any").mean(axis=1)


def slopes(per_x: Mapping[float, pd.Series]) -> pd.Series:
    """Per-seed least-squares slope of a pooled value against ``x`` (seeds measured at every x)."""
    wide = pd.DataFrame({x: s for x, s in per_x.items()}).dropna(axis=0, how="any")
    if wide.shape[1] < 2:
        return pd.Series(dtype=float)
    x = np.asarray(wide.columns, dtype=float)
    xc = x - x.mean()
    return pd.Series((wide.to_numpy() - wide.to_numpy().mean(axis=1, keepdims=True)) @ xc / (xc @ xc),
                     index=wide.index)


# -- the claims (from the store frame; the protocol ``sw`` is harness/sweeps/synth_claims.yaml) ----------------
def gain_table(scores: pd.DataFrame, sw: dict[str, Any], study: str = "main", value: str = "full",
               host_value: tuple[str, str] | None = None, ablation: str = "") -> pd.Series:
    """Paired gains (Finsta-host minus host, same seed) of one arm, indexed by host, task, task_type, mode, seed."""
    hp, hv = host_value or (study, value)
    g = paired_gains(select(scores, finsta=True, param=study, value=value, ablation=ablation),
                     select(scores, finsta=False, param=hp, value=hv))
    g.name = "gain"
    return g


def _only(s: pd.Series, **levels: Any) -> pd.Series:
    for k, v in levels.items():
        vals = v if isinstance(v, (list, tuple, set)) else [v]
        s = s[s.index.get_level_values(k).isin(list(vals))]
    return s


def _test(label: str, values: pd.Series, side: int, sw: dict[str, Any], unit: str = "pp") -> Test:
    d = sw["decision"]
    return Test(label, [float(v) for v in values.to_numpy()], side, float(d["level"]), str(d["method"]),
                [int(s) for s in values.index], unit)


def evaluate_claims(frame: pd.DataFrame, sw: dict[str, Any]) -> list[ClaimResult]:
    """The five claims of the issue, each with its per-seed tests (see :mod:`harness.claims_stats`)."""
    scores = headline_scores(frame, sw["headline"])
    ref, studies = sw["reference_host"], sw.get("studies") or {}
    main = gain_table(scores, sw)
    ref_gain = _only(main, host=ref)
    out: list[ClaimResult] = []
    # (1) every task type improves (reference host; per seed, gain averaged over modes)
    tests = [_test(f"{tt}: gain ({ref})", pooled(_only(ref_gain, task_type=tt), over=["mode"]), +1, sw)
             for tt in sorted(set(ref_gain.index.get_level_values("task_type")))]
    out.append(ClaimResult("1", "Finsta improves the host on every task type", tests,
                           "per task type: Finsta-host minus host, averaged over modes"))
    # (2) zero-shot gains > fine-tune gains
    both = ref_gain.groupby(level="task").filter(lambda g: g.index.get_level_values("mode").nunique() == 2)
    zs, ft = pooled(_only(both, mode="zeroshot")), pooled(_only(both, mode="finetune"))
    out.append(ClaimResult("2", "Gains are larger zero-shot than fine-tuned",
                           [_test("zero-shot gain - fine-tune gain", (zs - ft).dropna(), +1, sw)],
                           extra=[_test("zero-shot gain", zs, +1, sw), _test("fine-tune gain", ft, +1, sw)]))
    # (3) hosts missing encoders gain less
    tests, extra = [], [_test(f"{ref} gain", pooled(ref_gain), +1, sw)]
    for h in [h for h in sw["hosts"] if h != ref]:
        hg = _only(main, host=h)
        cells = set(zip(hg.index.get_level_values("task"), hg.index.get_level_values("mode")))
        mask = [(t, m) in cells for t, m in zip(ref_gain.index.get_level_values("task"),
                                                  ref_gain.index.get_level_values("mode"))]
        tests.append(_test(f"{ref} gain - {h} gain", (pooled(ref_gain[mask]) - pooled(hg)).dropna(), +1, sw))
        extra.append(_test(f"{h} gain", pooled(hg), +1, sw))
    out.append(ClaimResult("3", "Hosts missing encoders gain less", tests, extra=extra))
    # (4) ablation ordering: drop_a = Finsta(full) - Finsta(w/o a), pooled over the study's cells
    tests, extra = [], []
    if "ablation" in studies:
        st = studies["ablation"]
        full = _only(select(scores, finsta=True, param="main", value="full", host=ref), task=st["tasks"],
                     mode=st.get("modes", sw["modes"]))
        drops = {}
        for a in st["arms"]:
            ab = select(scores, finsta=True, param="ablation", value=a["name"], ablation=a["name"], host=ref)
            d = paired_gains(full, ab)
            d.name = "drop"
            drops[a["name"]] = pooled(d)
            extra.append(_test(f"drop: {a['name']}", drops[a["name"]], +1, sw))
        order = st.get("order") or []
        for hi_tier, lo_tier in zip(order, order[1:]):
            for a in hi_tier:
                for b in lo_tier:
                    tests.append(_test(f"drop {a} - drop {b}", (drops[a] - drops[b]).dropna(), +1, sw))
    out.append(ClaimResult("4", "Table 8 ordering: PTC, OSC > STGD > temporal edges > high-order regions", tests,
                           "drop = Finsta-host (full) minus Finsta-host (ablated), same seed", extra))
    # (5) gains grow with the number of events and fall with corrupted scene graphs
    tests, extra = [], []
    if "events" in studies:
        per_k = {float(k): pooled(gain_table(scores, sw, "events", str(k))) for k in studies["events"]["values"]}
        tests.append(_test("slope of gain vs num_events", slopes(per_k), +1, sw, "pp/event"))
        extra += [_test(f"gain at {int(k)} events", v, +1, sw) for k, v in per_k.items()]
    if "sg_noise" in studies:
        st = studies["sg_noise"]
        cells = _only(ref_gain, task=st["tasks"], mode=st.get("modes", sw["modes"]))
        per_r = {0.0: pooled(cells)}
        for r in st["values"]:
            per_r[float(r)] = pooled(gain_table(scores, sw, "sg_noise", str(r), host_value=("main", "full")))
        tests.append(_test(f"slope of gain vs SG {st.get('kind', 'drop')} rate", slopes(per_r), -1, sw, "pp/unit"))
        extra += [_test(f"gain at {st.get('kind', 'drop')}={r:g}", v, +1, sw) for r, v in per_r.items()]
    out.append(ClaimResult("5", "Gains grow with the number of events and fall with corrupted scene graphs", tests,
                           extra=extra))
    return out + control_claims(scores, sw)


def control_claims(scores: pd.DataFrame, sw: dict[str, Any]) -> list[ClaimResult]:
    """The ``controls`` study: each arm (e.g. ``oracle``: a teacher built from the exact scene graphs,
    ``paper_literal``: the paper-literal Finsta configuration) is post-trained from the main pre-trained
    checkpoint and compared with the main arm's host rows (the same step-matched control), per task type.

    An arm with ``positive_control: true`` is the benchmark's gate (claim ``P``): it is *supported* when the
    arm beats the control on at least one task type with the interval above 0 (the tasks that need what the
    oracle carries); the report then says whether the benchmark can test Finsta at all."""
    studies = sw.get("studies") or {}
    if "controls" not in studies:
        return []
    ref, st = sw["reference_host"], studies["controls"]
    out = []
    for a in st["arms"]:
        g = _only(gain_table(scores, sw, "controls", str(a["name"]), host_value=("main", "full")), host=ref)
        tests = [_test(f"{tt}: gain ({a['name']})", pooled(_only(g, task_type=tt), over=["mode"]), +1, sw)
                 for tt in sorted(set(g.index.get_level_values("task_type")))]
        cells = [_test(f"{t} {m}: gain ({a['name']})", _only(g, task=t, mode=m).droplevel(
            [k for k in g.index.names if k != "seed"]), +1, sw)
            for t, m in sorted(set(zip(g.index.get_level_values("task"), g.index.get_level_values("mode"))))]
        if a.get("positive_control"):
            out.append(ClaimResult("P", f"Positive control ({a['name']}): beats the step-matched control on at "
                                        "least one task type (interval above 0)", tests,
                                   "the benchmark can test Finsta only where this holds", cells, rule="any"))
        else:
            out.append(ClaimResult(f"C:{a['name']}", f"Arm {a['name']}: Finsta-host minus host per task type",
                                   tests, "same control rows as the main arm", cells))
    return out

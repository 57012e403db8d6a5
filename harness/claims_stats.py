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

import numpy as np
import pandas as pd

__all__ = ["SUPPORTED", "NOT_SUPPORTED", "INCONCLUSIVE", "Test", "ClaimResult", "t_quantile", "interval", "decide",
           "combine", "headline_scores", "select", "paired_gains", "pooled", "slopes"]

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

    @property
    def verdict(self) -> str:
        return combine([t.verdict for t in self.tests]) if self.tests else INCONCLUSIVE


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

"""Preparing a measured-runs frame: validation, canonical names, aggregation over seeds, paper lookup.

The run store hands over one tidy row per (run, metric) with the columns listed in
:data:`COLUMNS`. Values are expected in the paper's units (percent for accuracies and recalls).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from harness.tables.names import (
    canonical_dataset,
    canonical_metric,
    canonical_task_type,
    host_key,
    host_label,
    host_order,
)

__all__ = [
    "COLUMNS",
    "CORE_COLUMNS",
    "aggregate",
    "paper_lookup",
    "prepare_frame",
    "row_sort_key",
    "row_label",
    "sweep_value_key",
]

COLUMNS = [
    "run_id",
    "host",
    "finsta",
    "task",
    "task_type",
    "dataset",
    "mode",
    "split",
    "metric",
    "value",
    "seed",
    "n_samples",
    "n_failed",
    "protocol",
    "ablation",
    "sweep",
    "sweep_param",
    "sweep_value",
    "status",
]
CORE_COLUMNS = ["host", "finsta", "task_type", "mode", "metric", "value", "seed"]
_DEFAULTS = {
    "run_id": "",
    "task": "",
    "dataset": "",
    "split": "",
    "n_samples": float("nan"),
    "n_failed": 0.0,
    "protocol": "",
    "ablation": "",
    "sweep": "",
    "sweep_param": "",
    "sweep_value": "",
    "status": "",
}
# Runs in these states carry no final number; they are left out (and counted in a note).
UNFINISHED = {
    "failed",
    "error",
    "running",
    "pending",
    "queued",
    "submitted",
    "timeout",
    "timed_out",
    "cancelled",
    "canceled",
    "preempted",
    "crashed",
    "incomplete",
    "unknown",
    "dead",
    "corrupt",
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _to_bool(x: object, i: int) -> bool:
    if isinstance(x, bool):
        return x
    s = str(x).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE or s == "nan":
        return False
    raise ValueError(f"measured frame, row {i}: column 'finsta' must be a boolean, got {x!r}")


def _blank(x: object) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return str(x).strip()


def prepare_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Validate ``frame`` and add canonical keys.

    Returns:
        (prepared frame, number of unfinished runs left out). The prepared frame has the added
        columns ``hkey`` (host registry name), ``tt`` (task type), ``ds`` (dataset key; the task name
        when ``dataset`` is empty) and ``mk`` (metric key).

    Raises:
        ValueError: a core column is missing, or a value / flag is malformed (the message names the row).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of measured runs, got {type(frame).__name__}")
    missing = [c for c in CORE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"measured frame lacks columns {missing}; expected at least {CORE_COLUMNS} "
            f"(full schema: {COLUMNS})"
        )
    df = frame.copy()
    for col, default in _DEFAULTS.items():
        if col not in df.columns:
            df[col] = default
    status = df["status"].map(_blank).str.lower()
    gone = status.isin(UNFINISHED)
    ids = df.loc[gone, "run_id"].map(_blank)
    dropped = int(ids.nunique()) if (ids != "").all() else int(gone.sum())
    df = df[~status.isin(UNFINISHED)].copy()
    vals = pd.to_numeric(df["value"], errors="coerce")
    bad = vals.isna() & df["value"].notna() & (df["value"].map(_blank) != "")
    if bad.any():
        i = df.index[bad.to_numpy()][0]
        raise ValueError(
            f"measured frame, row {i} (run {df.at[i, 'run_id']!r}, metric {df.at[i, 'metric']!r}): "
            f"value {df.at[i, 'value']!r} is not a number"
        )
    df["value"] = vals
    # a finished run's NaN metric keeps its row (its column stays, shown as "-"); rows without a metric go
    df = df[df["value"].notna() | (df["metric"].map(_blank) != "")].copy()
    df["finsta"] = [_to_bool(x, i) for i, x in zip(df.index, df["finsta"])]
    for col in (
        "host",
        "task",
        "dataset",
        "mode",
        "split",
        "protocol",
        "ablation",
        "sweep",
        "sweep_param",
        "sweep_value",
        "task_type",
        "metric",
    ):
        df[col] = df[col].map(_blank)
    df["mode"] = df["mode"].str.lower().str.replace("-", "").str.replace("_", "")
    df["hkey"] = df["host"].map(host_key)
    df["tt"] = df["task_type"].map(canonical_task_type)
    df["ds"] = [canonical_dataset(d if d else t) for d, t in zip(df["dataset"], df["task"])]
    df["mk"] = df["metric"].map(canonical_metric)
    return df, dropped


def aggregate(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and spread over seeds for each group of ``keys``.

    Several rows with the same seed (re-runs) are averaged first, so every seed counts once.

    Returns:
        One row per group with ``mean``, ``std`` (sample std, ddof=1; NaN for a single seed),
        ``n`` (number of seeds), ``samples`` (sorted unique sample counts, as text) and
        ``protocols`` (sorted unique protocols, as text).
    """
    per_seed = (
        df.groupby(keys + ["seed"], dropna=False, sort=False)
        .agg(
            value=("value", "mean"),
            sample_set=("n_samples", lambda s: tuple(sorted({int(x) for x in s if pd.notna(x)}))),
            protocol_set=("protocol", lambda s: tuple(sorted({x for x in s if x}))),
        )
        .reset_index()
    )

    def _join(series: pd.Series) -> str:
        items = sorted({x for t in series for x in t})
        return ", ".join(str(x) for x in items)

    out = (
        per_seed.groupby(keys, dropna=False, sort=False)
        .agg(
            mean=("value", "mean"),
            std=("value", lambda s: s.std(ddof=1) if len(s) > 1 else float("nan")),
            n=("value", "size"),
            samples=("sample_set", _join),
            protocols=("protocol_set", _join),
        )
        .reset_index()
    )
    return out


def row_sort_key(host: str, finsta: bool) -> tuple:
    """Paper order: Table 10's hosts first (in its order), then others alphabetically; host before Finsta."""
    k = host_key(host)
    return (host_order(host), k, str(host), bool(finsta))


def row_label(host: str, finsta: bool) -> str:
    return ("Finsta-" if finsta else "") + host_label(host)


def sweep_value_key(v: object) -> tuple:
    """Sort sweep values numerically when they are numbers, else as text."""
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


class PaperIndex:
    """Lookup of the paper's reported values by canonical keys (built from :func:`load_paper_frame`)."""

    def __init__(self, paper: pd.DataFrame | None):
        self._idx: dict[tuple, list[tuple[str, float]]] = {}
        if paper is None:
            return
        for r in paper.itertuples():
            if (isinstance(r.value, float) and math.isnan(r.value)) or not r.host:
                continue
            setting = "" if r.table == 9 else r.setting
            sv = _norm_sweep(getattr(r, "sweep_value", ""))
            key = (
                r.table,
                setting,
                r.host,
                bool(r.finsta),
                r.ablation,
                getattr(r, "sweep_param", ""),
                sv,
                r.task_type,
                r.dataset_key,
                r.metric_key,
            )
            self._idx.setdefault(key, []).append((r.variant, float(r.value)))

    def get(
        self,
        table: int,
        mode: str,
        host: str,
        finsta: bool,
        tt: str,
        ds: str,
        mk: str,
        ablation: str = "",
        sweep_param: str = "",
        sweep_value: str = "",
    ) -> tuple[float | None, str]:
        """(value, text): ``text`` is set instead of ``value`` when the paper has several variants."""
        key = (
            table,
            mode,
            host_key(host),
            bool(finsta),
            ablation,
            sweep_param,
            _norm_sweep(sweep_value),
            tt,
            ds,
            mk,
        )
        hits = self._idx.get(key, [])
        if len(hits) == 1:
            return hits[0][1], ""
        if len(hits) > 1:
            return None, "; ".join(f"{v or '?'} {x:g}" for v, x in hits)
        return None, ""


def _norm_sweep(v: object) -> str:
    s = _blank(v)
    try:
        return repr(float(s))
    except ValueError:
        return s.lower()


def paper_lookup(paper_dir: str | Path | None) -> PaperIndex:
    """A :class:`PaperIndex` over ``paper_dir`` (no lookups when ``paper_dir`` is None)."""
    if paper_dir is None:
        return PaperIndex(None)
    from harness.tables.paper import load_paper_frame

    return PaperIndex(load_paper_frame(paper_dir))

"""Sweep figures: a metric against the swept value, mean ± std over seeds (paper Figs 10-12, 14)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.tables.frame import aggregate, prepare_frame, row_label, row_sort_key, sweep_value_key
from harness.tables.io import atomic_write_bytes
from harness.tables.names import dataset_label, metric_label

__all__ = ["PAPER_DEFAULTS", "SWEEP_TITLES", "plot_sweep"]

# The paper's chosen values (Section 6.1), drawn as a dashed line when the swept parameter matches.
PAPER_DEFAULTS: dict[str, float] = {
    "gamma_d": 0.6,
    "gamma_c": 0.9,
    "osc_order": 3,
    "ptc_order": 4,
    "rho_o": 0.7,
    "rho_p": 0.6,
}
SWEEP_TITLES: dict[str, str] = {
    "thresholds": "Coreference-edge thresholds γ^D, γ^C (paper Fig. 10)",
    "neighbour_order": "n-order neighbourhood for OSC / PTC (paper Fig. 11)",
    "alignment_thresholds": "Alignment confidence thresholds ρ^o, ρ^p (paper Fig. 12)",
    "sg_quality": "Scene-graph quality (paper Fig. 14, Table 12)",
}


def plot_sweep(frame: pd.DataFrame, sweep_name: str, out_png: str | Path) -> Path:
    """Plot every metric of sweep ``sweep_name`` against ``sweep_value`` and write ``out_png`` atomically.

    One panel per (sweep parameter, dataset, metric), one line per (host, Finsta) with a band of
    ± one standard deviation over seeds. Non-numeric sweep values are placed at equal spacing.

    Raises:
        ValueError: the frame has no finished rows for ``sweep_name`` (the message lists the sweeps it has).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    df, _ = prepare_frame(frame)
    sub = df[df["sweep"] == sweep_name]
    if sub.empty:
        have = sorted({s for s in df["sweep"] if s})
        raise ValueError(f"no finished runs for sweep {sweep_name!r}; sweeps in the frame: {have or 'none'}")
    agg = aggregate(sub, ["host", "finsta", "sweep_param", "ds", "mk", "sweep_value"])
    panels = sorted({(r.sweep_param, r.ds, r.mk) for r in agg.itertuples()})
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, (param, ds, mk) in zip(axes.flat, panels):
        p = agg[(agg["sweep_param"] == param) & (agg["ds"] == ds) & (agg["mk"] == mk)]
        values = sorted(set(p["sweep_value"]), key=sweep_value_key)
        numeric = all(sweep_value_key(v)[0] == 0 for v in values)
        xpos = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
        for host, fin in sorted({(r.host, r.finsta) for r in p.itertuples()}, key=lambda x: row_sort_key(*x)):
            line = p[(p["host"] == host) & (p["finsta"] == fin)].copy()
            line["x"] = line["sweep_value"].map(xpos)
            line = line.sort_values("x")
            std = line["std"].fillna(0.0)
            ax.plot(line["x"], line["mean"], marker="o", label=row_label(host, fin))
            ax.fill_between(line["x"], line["mean"] - std, line["mean"] + std, alpha=0.2)
        if numeric and param.lower() in PAPER_DEFAULTS:
            ax.axvline(PAPER_DEFAULTS[param.lower()], color="grey", linestyle="--", linewidth=0.8)
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(param or "sweep value")
        ax.set_ylabel(metric_label(mk))
        ax.set_title(f"{dataset_label(ds)} {metric_label(mk)}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(
        SWEEP_TITLES.get(sweep_name, f"Sweep {sweep_name}") + " — mean ± std over seeds", fontsize=10
    )
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(out_png, buf.getvalue())

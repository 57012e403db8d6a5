"""Loss weights of Eq 42 as functions of the step (sec 5.3, 6.1).

Stage 1 (Finsta warm-up): OSC and PTC only, at their initial weights. Stage 2 (joint post-training):
lambda^OSC and lambda^PTC fall linearly 0.5 -> 0.15, lambda^TRS rises 0.2 -> 0.5, lambda^MLM = lambda^VLA = 0.3.
``step`` counts from the start of the stage (0-based) and ``total_steps`` is the stage length; a disabled
objective (Table 8 "w/o L_OSC" / "w/o L_PTC") gets weight 0.
"""

from __future__ import annotations

from finsta_core.config import FinstaConfig


def _lin(start_end: tuple[float, float], frac: float) -> float:
    a, b = start_end
    return float(a + (b - a) * frac)  # linear scheduler of λ* (Eq 42, ref [52])


def loss_weights(cfg: FinstaConfig, stage: int, step: int, total_steps: int) -> dict[str, float]:
    """Eq 42 coefficients ``{"osc", "ptc", "trs", "mlm", "vla", "readout"}`` at ``step`` of a stage of
    ``total_steps`` (``readout``: the ``readout_align`` repair's constant weight, 0 when it is off)."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 (Finsta warm-up) or 2 (joint post-training), got {stage}")
    if total_steps < 1 or step < 0:
        raise ValueError(f"need total_steps >= 1 and step >= 0, got step={step}, total_steps={total_steps}")
    frac = min(step / max(total_steps - 1, 1), 1.0)
    if stage == 1:
        # λ^OSC, λ^PTC, λ^TRS, λ^MLM, λ^VLA (Eq 42)
        w = {"osc": cfg.lambda_osc[0], "ptc": cfg.lambda_ptc[0], "trs": 0.0, "mlm": 0.0, "vla": 0.0}
    else:
        # λ^OSC, λ^PTC, λ^TRS, λ^MLM, λ^VLA (Eq 42)
        w = {"osc": _lin(cfg.lambda_osc, frac), "ptc": _lin(cfg.lambda_ptc, frac), "trs": _lin(cfg.lambda_trs, frac),
             "mlm": float(cfg.lambda_mlm), "vla": float(cfg.lambda_vla)}
    w["readout"] = float(cfg.lambda_readout) if cfg.readout_align else 0.0  # issue-10 repair, both stages
    if not cfg.osc:
        w["osc"] = 0.0
    if not cfg.ptc:
        w["ptc"] = 0.0
    return {k: float(v) for k, v in w.items()}

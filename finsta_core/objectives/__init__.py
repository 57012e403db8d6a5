"""Finsta objectives: OSC / PTC (Eqs 37-40), TRS (Eq 41) and host injection (sec 5.2)."""

from finsta_core.objectives.alignment import osc_loss, ptc_loss
from finsta_core.objectives.contrast import candidate_pairs, info_nce
from finsta_core.objectives.trs import trs_loss

__all__ = ["candidate_pairs", "info_nce", "osc_loss", "ptc_loss", "trs_loss"]

"""``diagnose``: is Finsta's teacher informative, does it align, does the transfer collapse? (issue 10)

    python -m harness diagnose                       # repaired defaults, no host, 150 stage-1 steps
    python -m harness diagnose --literal             # the paper-literal configuration (PAPER_LITERAL)
    python -m harness diagnose --host tiny --host-checkpoint results/.../host.safetensors --stage2-steps 50
    python -m harness diagnose finsta.trs_distance=mse finsta.osc_hops=3 --json out.json

Prints linear-probe accuracies (Finsta's readouts, the host's features, the oracle bag of DSG labels) on
``synth_action``, the clean alignment accuracies and the collapse statistics; see ``harness/diagnose.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.errors import HarnessError


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``finsta.KEY=VALUE`` (VALUE as JSON when it parses, else a string) -> ``{KEY: VALUE}``."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.startswith("finsta.") or len(key) <= len("finsta."):
            raise HarnessError(f"diagnose: override {item!r} is not of the form finsta.FIELD=VALUE")
        v = _value(val)
        out[key[len("finsta."):]] = tuple(v) if isinstance(v, list) else v
    return out


def _diagnose(args: argparse.Namespace) -> int:
    from finsta_core.config import PAPER_LITERAL
    from harness.diagnose import DiagnoseConfig, format_report, run_diagnose

    finsta = dict(PAPER_LITERAL) if args.literal else {}
    finsta.update(parse_overrides(args.overrides))
    cfg = DiagnoseConfig(finsta=finsta, preset=args.preset, steps=args.steps, stage2_steps=args.stage2_steps,
                         batch_size=args.batch_size, lr=args.lr, host_lr=args.host_lr, host=args.host,
                         stage2_teacher_lr=args.stage2_teacher_lr,
                         host_checkpoint=args.host_checkpoint, n_corpus=args.n_corpus, n_probe_train=args.n_train,
                         n_probe_test=args.n_test, seed=args.seed, threads=args.threads)
    if cfg.stage2_steps and not cfg.host:
        raise HarnessError("diagnose: --stage2-steps needs a host (--host tiny)")
    try:
        res = run_diagnose(cfg)
    except ValueError as e:  # bad FinstaConfig field or value
        raise HarnessError(f"diagnose: {e}") from e
    print(format_report(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
        print(f"written {args.json}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagnose", help="teacher probes, clean alignment and collapse statistics (synthetic)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="finsta.FIELD=VALUE FinstaConfig overrides")
    p.add_argument("--literal", action="store_true", help="start from the paper-literal switches (PAPER_LITERAL)")
    p.add_argument("--preset", default="small", help="FinstaConfig preset (default small)")
    p.add_argument("--steps", type=int, default=150, help="stage-1 steps (default 150)")
    p.add_argument("--stage2-steps", type=int, default=0, help="stage-2 steps with the host (default 0)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--host-lr", type=float, default=1e-3)
    p.add_argument("--stage2-teacher-lr", type=float, default=None,
                   help="Finsta's lr in stage 2 except the TRS projector (default: --lr; 0 = a fixed teacher)")
    p.add_argument("--host", default="", help="host name (e.g. tiny); empty: Finsta alone")
    p.add_argument("--host-checkpoint", default="", help="host weights (empty: random init)")
    p.add_argument("--n-corpus", type=int, default=400, help="synth_pairs post-training pairs")
    p.add_argument("--n-train", type=int, default=400, help="synth_action probe train clips")
    p.add_argument("--n-test", type=int, default=200, help="synth_action probe test clips (also alignment)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="", help="also write the full result (with the training log) here")
    p.set_defaults(func=_diagnose)

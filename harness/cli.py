"""``python -m harness``: argparse front end. Every module in ``harness/commands/`` that defines
``register(subparsers)`` adds its subcommand (and ``set_defaults(func=callable(args) -> int)``).

Errors a user can fix (unknown names, missing files, bad overrides, capability mismatches) are printed as
one line ``error: ...`` with exit status 2, never a traceback (``--traceback`` shows it for debugging).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

__all__ = ["USER_ERRORS", "build_parser", "main"]


def _user_errors() -> tuple[type[BaseException], ...]:
    from finsta_core.registry import RegistryError, UnknownNameError
    from harness.errors import HarnessError

    errors: list[type[BaseException]] = [HarnessError, UnknownNameError, RegistryError, FileNotFoundError]
    try:
        from hosts.base import CapabilityError, CheckpointError

        errors += [CapabilityError, CheckpointError]
    except ImportError:  # pragma: no cover
        pass
    try:
        from finsta_core.graphs import SceneGraphError

        errors.append(SceneGraphError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


USER_ERRORS = _user_errors()


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command module of ``harness.commands`` registered."""
    parser = argparse.ArgumentParser(prog="python -m harness",
                                     description="Finsta benchmark harness: post-train, fine-tune and zero-shot runs, "
                                                 "sweeps, results store and paper tables.")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors (debugging)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import harness.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"harness.commands.{info.name}")
        except Exception as err:  # noqa: BLE001 - one broken plug-in command must not take the CLI down
            print(f"warning: command module harness.commands.{info.name} failed to import: {err}", file=sys.stderr)
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except USER_ERRORS as err:
        if getattr(args, "traceback", False):
            raise
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

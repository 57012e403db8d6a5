"""``python -m harness``: argparse front end. Every module in ``harness/commands/`` that defines
``register(subparsers)`` adds its subcommand (and ``set_defaults(func=callable(args) -> int)``); the module's
name is the command's name. Only the command being run is imported (``--help`` imports all of them), so a
light command (``status``, ``list``) stays light.

Errors a user can fix (unknown names, missing files, bad overrides, capability mismatches, a corrupt store
file) are printed as one line ``error: ...`` with exit status 2, never a traceback (``--traceback`` shows
it for debugging). No command waits for a keyboard.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import harness.commands as commands
from harness.errors import HarnessError

__all__ = ["build_parser", "main", "user_errors"]

# (module, class name) of the other packages' user-fixable errors; looked up only in modules already
# imported, since an error of a module that was never imported cannot have been raised.
_USER_ERRORS = (("finsta_core.registry", "UnknownNameError"), ("finsta_core.registry", "RegistryError"),
                ("hosts.errors", "CapabilityError"), ("hosts.errors", "CheckpointError"),
                ("finsta_core.graphs.types", "SceneGraphError"), ("tasks.datasets.common", "AnnotationError"))


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types printed as one line (those of modules imported so far)."""
    found: list[type[BaseException]] = [HarnessError, FileNotFoundError]
    for module, name in _USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _command_modules(argv: Sequence[str]) -> list[str]:
    """The command module(s) to import: the one named by the first positional argument, else all."""
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    first = next((a for a in argv if not a.startswith("-")), None)
    return [first] if first in names else names


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser with the command module(s) of ``harness.commands`` that ``argv`` needs registered."""
    parser = argparse.ArgumentParser(prog="python -m harness",
                                     description="Finsta benchmark harness: post-train, fine-tune and zero-shot runs, "
                                                 "sweeps, results store and paper tables.")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors (debugging)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules(argv):
        try:
            module = importlib.import_module(f"harness.commands.{name}")
        except Exception as err:  # noqa: BLE001 - one broken plug-in command must not take the CLI down
            print(f"warning: command module harness.commands.{name} failed to import: {err}", file=sys.stderr)
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except BrokenPipeError:  # `python -m harness list tasks | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as err:
        if getattr(args, "traceback", False) or not isinstance(err, user_errors()):
            raise
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

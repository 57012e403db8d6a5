"""The import graph of the first-party packages has no cycles, counting function-local imports (issue 15).

Every ``import`` / ``from ... import`` statement anywhere in a module (top level, inside functions, classes
or ``try`` blocks) is an edge; imports under ``if TYPE_CHECKING:`` are not (they never run). ``from a.b
import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``. A cycle hidden behind a lazy import
is still a cycle: the two modules cannot be understood, tested or changed apart.

Also: ``python -m harness run`` imports few harness modules, and light commands do not import torch.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("finsta_core", "hosts", "tasks", "harness")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_pkg: bool, mods: set[str] | None = None) -> list[tuple[str, int]]:
    """``(imported module, line)`` of every runtime import statement in ``tree``.

    ``from a.b import c`` gives ``a.b.c`` when that is one of ``mods`` (a submodule), and ``a.b`` for every name
    that is not; without ``mods`` both are listed.
    """
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_pkg else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            if mods is None:
                found.append((base, node.lineno))
                found.extend((m, node.lineno) for m in subs)
            else:
                found.extend((m, node.lineno) for m in subs if m in mods)
                if any(m not in mods for m in subs):
                    found.append((base, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported first-party module: first line}}`` over :data:`PACKAGES`."""
    mods = _modules()
    graph: dict[str, dict[str, int]] = {m: {} for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for name, line in _imports(tree, mod, path.name == "__init__.py", set(mods)):
            if name in mods and name != mod:
                graph[mod].setdefault(name, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _describe(comp: list[str], graph: dict[str, dict[str, int]]) -> str:
    mods = _modules()
    edges = [f"{a} -> {b} ({mods[a].relative_to(ROOT)}:{graph[a][b]})" for a in comp for b in graph[a] if b in comp]
    return "; ".join(edges)


def test_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles (function-local imports count):\n" + "\n".join(
        _describe(c, graph) for c in found)


def test_cycle_finder_sees_function_local_imports(tmp_path) -> None:
    tree = ast.parse("def f():\n    from harness import plan\n\nif TYPE_CHECKING:\n    import harness.spec\n")
    names = [n for n, _ in _imports(tree, "harness.x", False)]
    assert "harness.plan" in names and "harness.spec" not in names
    assert cycles({"a": {"b": 1}, "b": {"a": 2}, "c": {"a": 1}}) == [["a", "b"]]


def test_jobs_never_import_plan_and_nothing_imports_commands() -> None:
    graph = import_graph()
    for mod, targets in graph.items():
        if mod.startswith("harness.jobs"):
            assert "harness.plan" not in targets, f"{mod} imports harness.plan (jobs read the RunSpec only)"
        if not mod.startswith(("harness.commands", "harness.cli")):
            bad = [t for t in targets if t.startswith("harness.commands")]
            assert not bad, f"{mod} imports {bad}: nothing outside the CLI imports commands"


def _run_python(code: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_PROBE = """
import contextlib, io, json, sys
from harness.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
    rc = main({argv!r})
print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules, "pandas": "pandas" in sys.modules,
                  "harness": sorted(m for m in sys.modules if m == "harness" or m.startswith("harness."))}}))
"""


def test_status_imports_no_torch(tmp_path) -> None:
    got = _run_python(_PROBE.format(argv=["status", "--store", str(tmp_path / "empty")]))
    assert got["rc"] == 0 and not got["torch"] and not got["pandas"], got


def test_list_tasks_imports_no_torch() -> None:
    """Listing tasks (official and synthetic) needs no model: ``tasks.synthetic`` imports its torch parts lazily."""
    got = _run_python(_PROBE.format(argv=["list", "tasks"]))
    assert got["rc"] == 0 and not got["torch"], got


@pytest.mark.slow
def test_run_imports_few_harness_modules(tmp_path) -> None:
    """The modules ``python -m harness run`` needs to plan and submit (the job runs in a submitit process and
    imports ``harness.jobs.*`` there). Measured: 14 = 3 package ``__init__`` (harness, commands, config) + the CLI
    front (cli, commands._common, commands.run) + config.loader / identity, errors, plan, modes, spec, launch,
    store (before: every command module and every job module were imported, 30 harness modules)."""
    argv = ["run", "--host", "tiny", "--task", "synth_ret", "--mode", "zeroshot", "--seeds", "1",
            "--executor", "local", "--no-wait", "--store", str(tmp_path / "runs"), "preset=small"]
    got = _run_python(_PROBE.format(argv=argv))
    print(got["harness"])
    assert got["rc"] == 0
    assert len(got["harness"]) <= 14, got["harness"]
    assert not any(m.startswith("harness.jobs") for m in got["harness"]), got["harness"]

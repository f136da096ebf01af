"""The package's import structure: layers go one way (the import-linter contract in .importlinter) and
no module imports itself back through others. Imports inside functions and under TYPE_CHECKING count: a
lazy import delays a cycle, it does not remove it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


def _cycles(graph, modules: set[str]) -> list[list[str]]:
    """Every cycle found by a depth-first walk over module-to-module imports."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if state.get(target) == 1:
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [])
    return found


def test_no_import_cycles_between_modules():
    import grimp

    graph = grimp.build_graph("converter", cache_dir=None)
    modules = {m for m in graph.modules if m.startswith("converter")}
    # a package's __init__ importing its own submodules is not a cycle of behaviour
    cycles = [c for c in _cycles(graph, modules) if not all(m == c[0] or m.startswith(c[0] + ".") for m in c[1:])]
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles[:5])

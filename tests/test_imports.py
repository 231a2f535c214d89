"""The import graph: reading never loads training code, and no module imports itself back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "htr_ssl"
READING = ["htr_ssl.cli.predict", "htr_ssl.cli.evaluate", "htr_ssl.cli.heatmaps",
           "htr_ssl.cli.export", "htr_ssl.cli.show"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of htr_ssl that `path` imports anywhere (functions included), except under
    `if TYPE_CHECKING:` (never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                      else node.module for a in node.names}
    return {m for m in found if m in modules}


@pytest.mark.parametrize("module", sorted(
    [m for m in _modules() if m.startswith(("htr_ssl.eval", "htr_ssl.inference",
                                            "htr_ssl.models"))] + READING))
def test_reading_never_imports_training(module):
    code = (f"import sys, {module}; "
            "print([m for m in sys.modules if m.startswith('htr_ssl.train')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"{module} loads training code: {out}"


def test_no_import_cycles():
    """Depth-first search over every import (function-level ones too): a cycle is a design
    loop even where a deferred import keeps Python from tripping over it."""
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if n.startswith(m + "."):  # a package importing its own submodules
                continue
            if state.get(n) == 1 and not m.startswith(n + "."):
                cycles.append([*stack[stack.index(n):], n])
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)

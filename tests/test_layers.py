"""The layer rules of docs/architecture.md, read from the source (every import, at any depth).

models <- spaces <- search <- cluster: a package imports only the packages below it;
``models`` imports no Ray, Optuna, DeepSpeed or Plotly; ``spaces`` only describes (no I/O).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("models", "spaces", "search", "cluster")  # each may import only those before it
HEAVY = {"ray", "optuna", "deepspeed", "plotly", "kaleido"}
IO_MODULES = {"os", "io", "pathlib", "shutil", "subprocess", "socket", "urllib", "tempfile"}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of every import in ``path``, function-level ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _violations(package: str, forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _sources(package)
        for line, module in _imports(path)
        if module in forbidden
    ]


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    assert _violations(package, above) == []


def test_models_import_no_ray_optuna_deepspeed_or_plotly() -> None:
    assert _violations("models", HEAVY) == []


def test_spaces_do_no_io() -> None:
    problems = _violations("spaces", IO_MODULES | HEAVY - {"optuna"})
    for path in _sources("spaces"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node.func, "id", None) if isinstance(node, ast.Call) else None
            if name in ("open", "print", "input"):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}")
    assert problems == []


def test_the_scan_sees_imports_at_any_depth() -> None:
    """The checker itself: cluster imports search (allowed), also inside functions."""
    assert _violations("cluster", {"search"}), "cluster builds on search: the scan must see it"
    lines = [line for line, module in _imports(ROOT / "search" / "cli.py") if module == "search"]
    assert lines, "search/cli.py imports search modules inside functions"

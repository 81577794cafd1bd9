"""The layer rules of docs/architecture.md, read from the source (every import, at any depth).

models <- spaces <- search <- cluster: a package imports only the packages below it;
``models`` imports no Ray, Optuna, DeepSpeed or Plotly; ``spaces`` only describes (no I/O).
Inside ``search`` the jobs are layered the same way (:data:`SEARCH_LAYERS`), and no module
imports one that imports it back, at any distance.

``python tests/test_layers.py`` prints the graph between the jobs of ``search`` (the picture in
docs/architecture.md).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("models", "spaces", "search", "cluster")  # each may import only those before it
HEAVY = {"ray", "optuna", "deepspeed", "plotly", "kaleido"}
IO_MODULES = {"os", "io", "pathlib", "shutil", "subprocess", "socket", "urllib", "tempfile"}


#: The jobs of ``search`` (a subpackage or a module), lowest first: each imports only jobs of
#: its own layer or below.
SEARCH_LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "vocabulary", "storage", "console"),  # shared names, files, the terminal
    ("data",),
    ("experiment",),
    ("trial",),
    ("results", "pareto"),
    ("report",),
    ("sweep",),
    ("reproduce",),
    ("cli",),
)


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
    lines = [
        line for line, module in _imports(ROOT / "search" / "cli" / "main.py") if module == "search"
    ]
    assert lines, "search/cli/main.py imports search modules inside functions"


# ---- inside search: the jobs' layers, and no import cycle ------------------------------------
def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _module_graph() -> dict[str, set[str]]:
    """Every module of the four packages -> the modules it imports (package ``__init__`` where
    a name is not a module of its own), function-level imports included."""
    paths = {_module_name(p): p for pkg in LAYERS for p in _sources(pkg)}
    graph: dict[str, set[str]] = {m: set() for m in paths}
    for module, path in paths.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*here[: len(here) - node.level + 1], *filter(None, [base])])
                # a name that is a module of its own is that module, else the package's
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def _job(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "search" and len(parts) > 1 else None


def job_graph() -> dict[str, set[str]]:
    """Each job of ``search`` -> the other jobs it imports."""
    jobs: dict[str, set[str]] = {}
    for module, targets in _module_graph().items():
        job = _job(module)
        if job is None:
            continue
        jobs.setdefault(job, set()).update(
            t for t in map(_job, targets) if t is not None and t != job
        )
    return jobs


def test_every_job_of_search_has_a_layer() -> None:
    placed = [job for layer in SEARCH_LAYERS for job in layer]
    assert len(placed) == len(set(placed))
    assert set(job_graph()) == set(placed)


def test_a_job_of_search_imports_only_its_layer_and_below() -> None:
    level = {job: i for i, layer in enumerate(SEARCH_LAYERS) for job in layer}
    upward = [
        f"search.{job} imports search.{target}"
        for job, targets in job_graph().items()
        for target in targets
        if level[target] > level[job]
    ]
    assert upward == []


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _module_graph()
    cycles = []
    for start in graph:  # a path from one of its imports back to the module itself
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node == start:
                cycles.append(start)
                break
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
    assert cycles == []


def test_the_cycle_check_sees_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: the cycle the trial loop and its sessions once had is found."""
    graph = _module_graph()
    graph["search.trial.sessions"].add("search.trial.loop")
    graph["search.trial.loop"].add("search.trial.sessions")
    monkeypatch.setattr(sys.modules[__name__], "_module_graph", lambda: graph)
    with pytest.raises(AssertionError):
        test_no_module_imports_one_that_imports_it_back()


if __name__ == "__main__":
    for job, targets in sorted(job_graph().items()):
        print(f"{job:<12} -> {', '.join(sorted(targets)) or '-'}")

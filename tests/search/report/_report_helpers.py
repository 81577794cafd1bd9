"""Helpers shared by the report tests (tests/search/report/test_report_*.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "results_small"
SECTIONS = (
    "summary",
    "front",
    "matched-cost",
    "front-table",
    "hypervolume",
    "learning-curves",
    "families",
    "trial-status",
)
FAMILIES = ("perceiver", "vit", "mixer")


def fixture_generator() -> ModuleType:
    """tests/fixtures/make_results_small.py, the script that writes :data:`FIXTURE`."""
    spec = importlib.util.spec_from_file_location(
        "make_results_small", FIXTURE.parent / "make_results_small.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixture_trials() -> dict[str, Any]:
    """The fixture's ``trials.json``, parsed (a fresh copy to edit)."""
    doc: dict[str, Any] = json.loads((FIXTURE / "trials.json").read_text(encoding="utf-8"))
    return doc


def write_trials(directory: Path, doc: dict[str, Any]) -> Path:
    """``doc`` written as ``directory/trials.json``: a results directory the report reads."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trials.json").write_text(json.dumps(doc), encoding="utf-8")
    return directory


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def embedded_traces(page: str, div_id: str) -> list[dict[str, Any]]:
    """The trace list passed to ``Plotly.newPlot("<div_id>", [...])`` in the page."""
    m = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', page)
    assert m, f"no Plotly.newPlot for {div_id}"
    traces, _ = json.JSONDecoder().raw_decode(page, m.end())
    return traces


def by_kind(traces: list[Any], view: str, kind: str) -> list[Any]:
    def meta(t: Any) -> dict[str, Any]:
        m = t["meta"] if isinstance(t, dict) else t.meta
        return m or {}

    return [t for t in traces if meta(t).get("view") == view and meta(t).get("kind") == kind]

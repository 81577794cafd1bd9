"""Fixtures of the report tests: the fixed fixture tests/fixtures/results_small, its report
(written once per session), its results, the ReportData and the figures drawn from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly.graph_objects as go
import pytest
from _report_helpers import FIXTURE

from search import report


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results") / "results_small"
    shutil.copytree(FIXTURE, out)
    return out


@pytest.fixture(scope="session")
def written(results_dir: Path) -> report.ReportFiles:
    """The report as ``paretotune report DIR`` writes it (presets from models.PRESETS)."""
    return report.write_report(results_dir)


@pytest.fixture(scope="session")
def page(written: report.ReportFiles) -> str:
    return written.html.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def results(results_dir: Path) -> report.Results:
    return report.load_results(results_dir)


@pytest.fixture(scope="session")
def data(results: report.Results) -> report.ReportData:
    """Everything the report shows, without the seed presets."""
    return report.compute_report_data(results, [])


@pytest.fixture(scope="session")
def figures(data: report.ReportData) -> dict[str, go.Figure]:
    return report.draw_figures(data)

"""The interactive report: one self-contained ``report.html`` for a results directory.

Computing and drawing are apart (as Optuna's ``_get_pareto_front_info`` and
``_get_pareto_front_plot``): :func:`compute_report_data` computes everything the report
shows, each front once, into plain dataclasses (:mod:`.data`; every number from
:mod:`search.pareto`); the figures (:mod:`.figures`) and the page (:mod:`.page`,
:mod:`.tables`, the static CSS/JS) only draw them; :mod:`.export` writes PNGs. How to read
the page: ``docs/report.md``.

    write_report(results_dir, png=False) -> ReportFiles   # path-like: os.fspath() -> report.html
    load_results(results_dir) -> Results
    compute_report_data(results, presets=None) -> ReportData
    draw_figures(data) -> dict[str, go.Figure]
    build_figures(results, presets=None) -> dict[str, go.Figure]   # compute, then draw
    render_html(data, figures) -> str
"""

from __future__ import annotations

from .data import COST_AXES, ReportData, compute_report_data
from .figures import MAIN_FIGURES, draw_figures
from .inputs import PresetPoint, Results, load_results, preset_points
from .write import ReportFiles, build_figures, render_html, write_report

__all__ = [
    "COST_AXES",
    "MAIN_FIGURES",
    "PresetPoint",
    "ReportData",
    "ReportFiles",
    "Results",
    "build_figures",
    "compute_report_data",
    "draw_figures",
    "load_results",
    "preset_points",
    "render_html",
    "write_report",
]

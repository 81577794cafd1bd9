"""The report's pipeline: load the results, compute the data, draw, assemble, write."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from .data import ReportData, compute_report_data
from .export import export_pngs
from .figures import MAIN_FIGURES, draw_figures
from .inputs import PresetPoint, Results, load_results
from .page import render_page

__all__ = ["ReportFiles", "build_figures", "render_html", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote. Path-like: ``os.fspath(files)`` is the report.html.

    ``pngs`` maps figure name to PNG path (empty unless ``png=True`` and export worked);
    ``png_error`` says why PNGs were not written when they were asked for.
    """

    html: Path | str
    pngs: dict[str, Path] = field(default_factory=dict)
    png_error: str | None = None

    def __fspath__(self) -> str:
        return str(self.html)

    def __str__(self) -> str:
        return str(self.html)


def build_figures(
    results: Results, *, presets: Sequence[PresetPoint] | None = None
) -> dict[str, go.Figure]:
    """All figures of the report, keyed ``front``, ``hypervolume``, ``learning_curves``,
    ``parcoords:<family>``, ``importance:<family>``.

    ``presets=None`` places ``models.PRESETS`` (imports torch); pass ``[]`` to leave them out.
    With the :class:`ReportData` at hand, :func:`search.report.draw_figures` draws the same.
    """
    return draw_figures(compute_report_data(results, presets))


def render_html(data: ReportData | Results, figures: Mapping[str, go.Figure]) -> str:
    """The whole self-contained page: plotly.js inline once, then every section.

    Pass the :class:`ReportData` the figures were drawn from; from :class:`Results` the data
    is computed again (without presets: the page's tables do not show them).
    """
    if isinstance(data, Results):
        data = compute_report_data(data, [])
    return render_page(data, figures)


def write_report(
    results_dir: str | os.PathLike[str],
    *,
    png: bool = False,
    presets: Sequence[PresetPoint] | None = None,
    trials: dict[str, Any] | None = None,
) -> ReportFiles:
    """Write ``<results_dir>/report.html`` (and with ``png`` the main figures as PNGs).

    Returns a :class:`ReportFiles`, usable as the report.html path (``os.fspath``, ``str``).
    ``trials``: ``trials.json`` when the caller has read it already. A failed PNG export never
    raises: it prints one message to stderr and sets
    ``png_error``.
    """
    from search import storage

    results = load_results(results_dir, trials=trials)
    data = compute_report_data(results, presets)
    figures = draw_figures(data)
    page = render_page(data, figures)
    if isinstance(results.directory, str):  # an object store: one PUT of the page
        uri = storage.join(results.directory, "report.html")
        storage.write_text(uri, page)
        if not png:
            return ReportFiles(uri)
        why = "PNGs are written into local results folders only; report.html was written."
        print(f"paretotune report: {why}", file=sys.stderr)
        return ReportFiles(uri, {}, why)
    out = results.directory / "report.html"
    out.write_text(page, encoding="utf-8")
    if not png:
        return ReportFiles(out)
    pngs, error = export_pngs(figures, MAIN_FIGURES, results.directory)
    if error:
        print(f"paretotune report: {error}", file=sys.stderr)
    return ReportFiles(out, pngs, error)

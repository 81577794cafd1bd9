"""The report's figures, each drawn only from a :class:`~search.report.data.ReportData`.

A figure is one draw function, registered below: :data:`FIGURES` for the report-wide ones
(``data -> Figure``), :data:`FAMILY_FIGURES` for those drawn once per family (``data, family
-> Figure``; the page shows them in the family's block, in this order). Nothing here
computes a front or reads a file.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go

from ..data import ReportData
from .common import message_figure, notes, with_notes
from .family import importance_figure, parcoords_figure
from .front import front_figure
from .progress import hypervolume_figure, learning_curves_figure

__all__ = [
    "FAMILY_FIGURES",
    "FIGURES",
    "MAIN_FIGURES",
    "draw_figures",
    "family_figure_key",
    "front_figure",
    "hypervolume_figure",
    "importance_figure",
    "learning_curves_figure",
    "message_figure",
    "notes",
    "parcoords_figure",
    "with_notes",
]

#: Report-wide figures by key.
FIGURES: dict[str, Callable[[ReportData], go.Figure]] = {
    "front": front_figure,
    "hypervolume": hypervolume_figure,
    "learning_curves": learning_curves_figure,
}
#: Per-family figures by kind; keyed ``<kind>:<family>`` in :func:`draw_figures`.
FAMILY_FIGURES: dict[str, Callable[[ReportData, str], go.Figure]] = {
    "parcoords": parcoords_figure,
    "importance": importance_figure,
}
#: Figures exported as PNG by ``write_report(..., png=True)``.
MAIN_FIGURES: tuple[str, ...] = ("front", "hypervolume", "learning_curves")


def family_figure_key(kind: str, family: str) -> str:
    """The key of ``family``'s figure of ``kind``, e.g. ``parcoords:vit``."""
    return f"{kind}:{family}"


def draw_figures(data: ReportData) -> dict[str, go.Figure]:
    """Every figure, keyed ``front``, ``hypervolume``, ``learning_curves``, then per family
    ``parcoords:<family>``, ``importance:<family>``."""
    figs = {key: draw(data) for key, draw in FIGURES.items()}
    for fam in data.families:
        for kind, draw_family in FAMILY_FIGURES.items():
            figs[family_figure_key(kind, fam)] = draw_family(data, fam)
    return figs

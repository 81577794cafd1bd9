"""The report's figures, each drawn only from a :class:`~search.report.data.ReportData`.

A figure is one draw function, registered below: :data:`FIGURES` for the report-wide ones
(``data -> Figure``), :data:`FAMILY_FIGURES` for those drawn once per family (``data, family
-> Figure``; the page shows them in the family's block, in this order),
:data:`DIMENSION_FIGURES` for those drawn once per named dimension of a family in
``data.which`` (``data, family, dimension -> Figure``; shown in its "Which <family>"
section). Nothing here computes a front or reads a file.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go

from ..data import ReportData
from .common import message_figure, notes, with_notes
from .dimensions import dimension_figure
from .family import importance_figure, parcoords_figure
from .front import front_figure
from .progress import hypervolume_figure, learning_curves_figure

__all__ = [
    "DIMENSION_FIGURES",
    "FAMILY_FIGURES",
    "FIGURES",
    "MAIN_FIGURES",
    "dimension_figure",
    "dimension_figure_key",
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
#: Per-dimension figures by kind; keyed ``<kind>:<family>:<dimension>`` in :func:`draw_figures`.
DIMENSION_FIGURES: dict[str, Callable[[ReportData, str, str], go.Figure]] = {
    "dimension": dimension_figure,
}
#: Figures exported as PNG by ``write_report(..., png=True)``.
MAIN_FIGURES: tuple[str, ...] = ("front", "hypervolume", "learning_curves")


def family_figure_key(kind: str, family: str) -> str:
    """The key of ``family``'s figure of ``kind``, e.g. ``parcoords:vit``."""
    return f"{kind}:{family}"


def dimension_figure_key(kind: str, family: str, dimension: str) -> str:
    """The key of ``family``'s figure of ``kind`` for ``dimension``, e.g.
    ``dimension:perceiver:num_latents``."""
    return f"{kind}:{family}:{dimension}"


def draw_figures(data: ReportData) -> dict[str, go.Figure]:
    """Every figure, keyed ``front``, ``hypervolume``, ``learning_curves``, then per family
    ``parcoords:<family>``, ``importance:<family>``, then per named dimension of a family
    with a "Which" section ``dimension:<family>:<dimension>``."""
    figs = {key: draw(data) for key, draw in FIGURES.items()}
    for fam in data.families:
        for kind, draw_family in FAMILY_FIGURES.items():
            figs[family_figure_key(kind, fam)] = draw_family(data, fam)
    for fam, which in data.which.items():
        dims = which.dimensions.dimensions if which.dimensions is not None else ()
        for dim in dims:
            for kind, draw_dim in DIMENSION_FIGURES.items():
                figs[dimension_figure_key(kind, fam, dim.name)] = draw_dim(data, fam, dim.name)
    return figs

"""The page: plotly.js inline once, the static CSS and JavaScript, then every section.

The CSS and JavaScript are package data (``search/report/static/``), read with
:mod:`importlib.resources`, so the page needs no network and no file beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from .data import ReportData
from .figures import FAMILY_FIGURES, family_figure_key, notes
from .format import esc
from .tables import (
    front_table_html,
    matched_cost_html,
    published_html,
    status_html,
    summary_html,
)
from .which import which_html, which_sections

__all__ = ["PUBLISHED_SECTION", "SECTIONS", "figure_html", "render_page", "static_text"]

#: The page's sections: id and heading, in order; after "matched-cost" come
#: :data:`PUBLISHED_SECTION` (when the dataset has a published table) and the "Which
#: <family>" sections (one per family in ``data.which``).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("front", "Pareto front"),
    ("matched-cost", "Accuracy at a matched cost"),
    ("front-table", "Front members"),
    ("hypervolume", "Hypervolume"),
    ("learning-curves", "Learning curves"),
    ("families", "Hyperparameters per family"),
    ("trial-status", "Failed, stopped and infeasible trials"),
)

#: The published results' section, on the page when ``data.published`` is set.
PUBLISHED_SECTION = ("published", "Published results")

_FRONT_INTRO = (
    "<p>Each dot is a measured trial; the step lines are each family's front and the "
    "black line the overall front. Hover for the config; the menu at the top right "
    "switches the cost axis. Stars are the seed examples' presets at their estimated "
    "cost.</p>"
)


def _front_intro(data: ReportData) -> str:
    """The front's explanation, and what the published markers are when they are drawn."""
    placed = [v for v in data.front.views if v.published]
    if data.published is None or not placed:
        return _FRONT_INTRO
    views = " and ".join(v.title for v in placed)
    return _FRONT_INTRO + (
        f"<p>Grey diamonds on the {esc(views)} view are results published for "
        f"{esc(data.published.title)} (the rows of the table under "
        f'<a href="#{PUBLISHED_SECTION[0]}">{PUBLISHED_SECTION[1]}</a> that give a count). '
        f"Their height is <b>test</b> accuracy on the official test set, as submitted, while "
        f"the trials' is {esc(data.accuracy_key)}: a reference, not a like-for-like "
        f"comparison.</p>"
    )


def static_text(name: str) -> str:
    """The text of ``search/report/static/<name>`` (package data)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def figure_html(fig: go.Figure, div_id: str) -> str:
    """``fig`` as a ``<div>`` (plotly.js not included), then its notes."""
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return body + "".join(f'<p class="note">{esc(n)}</p>' for n in notes(fig))


def _div(key: str) -> str:
    """The ``<div>`` id of figure ``key`` (``parcoords:vit`` -> ``fig-parcoords-vit``)."""
    return f"fig-{key.replace(':', '-')}"


def _families_html(data: ReportData, figures: Mapping[str, go.Figure]) -> str:
    """One block per family with its per-family figures."""
    parts = []
    for fam in data.families:
        keys = [family_figure_key(kind, fam) for kind in FAMILY_FIGURES]
        figs = "".join(figure_html(figures[k], _div(k)) for k in keys if k in figures)
        parts.append(f'<h3 id="family-{esc(fam)}">{esc(fam)}</h3><div class="family">{figs}</div>')
    return "".join(parts) or "<p class='muted'>No families.</p>"


def _sections(data: ReportData) -> tuple[tuple[str, str], ...]:
    """The page's sections in order: :data:`SECTIONS`, with the published and the "Which"
    ones after matched cost."""
    at = [sid for sid, _ in SECTIONS].index("matched-cost") + 1
    published = (PUBLISHED_SECTION,) if data.published is not None else ()
    return (*SECTIONS[:at], *published, *which_sections(data), *SECTIONS[at:])


def _section_bodies(data: ReportData, figures: Mapping[str, go.Figure]) -> dict[str, str]:
    """Each section's HTML by section id."""

    def figure(key: str) -> str:
        return figure_html(figures[key], _div(key)) if key in figures else ""

    which = {f"which-{fam}": which_html(data, fam, figure) for fam in data.which}
    return {
        **which,
        "summary": summary_html(data),
        "front": _front_intro(data) + figure_html(figures["front"], _div("front")),
        "matched-cost": matched_cost_html(data),
        PUBLISHED_SECTION[0]: published_html(data),
        "front-table": front_table_html(data),
        "hypervolume": figure_html(figures["hypervolume"], _div("hypervolume")),
        "learning-curves": figure_html(figures["learning_curves"], _div("learning_curves")),
        "families": _families_html(data, figures),
        "trial-status": status_html(data),
    }


def render_page(data: ReportData, figures: Mapping[str, go.Figure]) -> str:
    """The whole self-contained page: plotly.js inline once, then every section."""
    bodies = _section_bodies(data, figures)
    order = _sections(data)
    name = esc(data.results.name)
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in order)
    sections = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{bodies[sid]}</section>' for sid, title in order
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>paretotune report: {name}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>\n{static_text('report.css')}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>paretotune report: {name}</h1>"
        f'<p class="muted">{esc(data.results.directory)}</p><nav>{nav}</nav>{sections}'
        f"<script>\n{static_text('report.js')}</script></body></html>\n"
    )

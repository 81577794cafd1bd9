"""The Pareto front figure: accuracy against cost (log x), one view per cost axis (a menu)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from search.pareto import Front, as_float

from ..data import FrontView, PublishedPoint, ReportData
from ..format import colour, cost_text, esc, pct
from ..inputs import PresetPoint
from .common import HOVER, error_bars, trial_hover, with_notes

__all__ = ["front_figure"]


def _shade(row: Mapping[str, Any]) -> float:
    """A point's opacity: its probability of being on the front (0.15 to 0.9; 0.45 without)."""
    p = as_float(row.get("front_probability"))
    return 0.15 + 0.75 * p if math.isfinite(p) else 0.45


def _points_trace(view: FrontView, family: str, acc: str) -> go.Scatter:
    """Every front-eligible trial of ``family``, shaded by its probability of being on the
    front (faint: unlikely)."""
    key, pts = view.cost_key, view.points(family)
    return go.Scatter(
        x=[as_float(r[key]) for r in pts],
        y=[as_float(r[acc]) for r in pts],
        mode="markers",
        name=family,
        legendgroup=family,
        customdata=[str(r.get("trial_id")) for r in pts],
        marker={"color": colour(family), "size": 8, "opacity": [_shade(r) for r in pts]},
        text=[trial_hover(r, acc) for r in pts],
        hovertemplate=HOVER,
        meta={"view": key, "kind": "points", "family": family},
    )


def _front_trace(
    view: FrontView, front: Front, acc: str, *, name: str, style: Mapping[str, Any]
) -> go.Scatter:
    """A front as a step line (``style``: ``line``, ``marker``, ``legendgroup``)."""
    key = view.cost_key
    kind = "overall_front" if front.family is None else "family_front"
    return go.Scatter(
        x=list(front.column(key)),
        y=list(front.column(acc)),
        mode="lines+markers",
        name=name,
        customdata=list(front.trial_ids),
        text=[trial_hover(p.row, acc) for p in front.points],
        hovertemplate=HOVER,
        meta={"view": key, "kind": kind, "family": front.family},
        **style,
    )


def _family_front_trace(view: FrontView, family: str, acc: str) -> go.Scatter:
    """``family``'s front, in its colour, each point with its accuracy's interval."""
    c = colour(family)
    front = view.fronts.by_family[family]
    style: dict[str, Any] = {
        "legendgroup": family,
        "line": {"color": c, "shape": "hv"},
        "marker": {"color": c, "size": 9},
    }
    bars = error_bars([p.row for p in front.points], acc)
    if bars:
        style["error_y"] = {**bars, "color": c}
    return _front_trace(view, front, acc, name=f"{family} front", style=style)


def _overall_front_trace(view: FrontView, acc: str) -> go.Scatter:
    """The overall front: black, open circles."""
    style = {
        "line": {"color": "black", "width": 3, "shape": "hv"},
        "marker": {"symbol": "circle-open", "size": 15, "color": "black", "line": {"width": 2}},
    }
    return _front_trace(view, view.fronts.overall, acc, name="overall front", style=style)


def _infeasible_trace(view: FrontView) -> go.Scatter:
    """The over-budget trials as grey crosses along the bottom (never trained)."""
    rows = view.infeasible
    return go.Scatter(
        x=[as_float(r[view.cost_key]) for r in rows],
        y=[0.02] * len(rows),
        yaxis="y2",
        mode="markers",
        name="infeasible (over budget, not trained)",
        marker={"symbol": "x-thin", "size": 10, "line": {"width": 2, "color": "grey"}},
        customdata=[str(r.get("trial_id")) for r in rows],
        text=[
            f"{esc(r.get('trial_id'))} ({r.get('family')}): INFEASIBLE<br>"
            f"{esc(r.get('failure_reason') or '')}"
            for r in rows
        ],
        hovertemplate=HOVER,
        meta={"view": view.cost_key, "kind": "infeasible", "family": None},
    )


def _preset_hover(p: PresetPoint, key: str) -> str:
    """A preset's hover text: estimated cost, reported accuracy and source."""
    return (
        f"<b>preset {html.escape(p.name)}</b> ({p.family})<br>"
        f"{cost_text(key, p.cost(key))} (estimated)<br>reported test top-1: "
        f"{pct(p.reported_top1)} on the seed's data ({esc(p.dataset_name)}, {p.dataset}),<br>"
        f"not this sweep's validation set<br>source: {html.escape(p.source)}"
    )


def _preset_trace(view: FrontView, group: Sequence[PresetPoint], reported: bool) -> go.Scatter:
    """Seed presets at their estimated cost: at their reported accuracy when it was measured
    on this sweep's dataset, else on the cost axis alone (a marker along the bottom): an
    accuracy from other data is never a y value here."""
    key = view.cost_key
    return go.Scatter(
        x=[p.cost(key) for p in group],
        y=[view.preset_accuracy(p) for p in group] if reported else [0.07] * len(group),
        yaxis="y" if reported else "y2",
        mode="markers+text",
        name="seed presets"
        + ("" if reported else " at their cost (accuracy from other data, or none)"),
        text=[p.name for p in group],
        textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(len(group))],
        textfont={"size": 10, "color": "#444"},
        marker={
            "symbol": "star-diamond" if reported else "star-diamond-open",
            "size": 14,
            "color": [colour(p.family) for p in group],
            "line": {"width": 1, "color": "black"},
        },
        hovertext=[_preset_hover(p, key) for p in group],
        hovertemplate="%{hovertext}<extra></extra>",
        meta={"view": key, "kind": "preset", "family": None, "reported": reported},
    )


#: The legend name of the published results: their y is test accuracy, not the trials' one.
_PUBLISHED_NAME = "published (test accuracy)"


def _published_hover(p: PublishedPoint, key: str) -> str:
    """A published row's hover text: model, test accuracy, cost, preprocessing, submitter."""
    r = p.result
    return (
        f"<b>{esc(r.model)}</b> (published)<br>"
        f"test accuracy: {pct(r.test_accuracy)} on the official test set,<br>"
        f"not this sweep's validation set<br>"
        f"{esc(key)}: {esc(cost_text(key, p.cost))}<br>"
        f"preprocessing: {esc(r.preprocessing)}<br>submitter: {esc(r.submitter)}"
    )


def _published_trace(view: FrontView) -> go.Scatter:
    """The dataset's published results at their cost and test accuracy: grey diamonds."""
    key, pts = view.cost_key, view.published
    return go.Scatter(
        x=[p.cost for p in pts],
        y=[p.result.test_accuracy for p in pts],
        mode="markers",
        name=_PUBLISHED_NAME,
        marker={
            "symbol": "diamond",
            "size": 11,
            "color": "#7f7f7f",
            "line": {"width": 1, "color": "black"},
        },
        hovertext=[_published_hover(p, key) for p in pts],
        hovertemplate="%{hovertext}<extra></extra>",
        meta={"view": key, "kind": "published", "family": None},
    )


#: The attainment band's traces: (percentile, legend name, line style).
_BAND = (
    (75.0, "seeds' attainment: 75 % of fronts reach", {"width": 0}),
    (25.0, "seeds' attainment: 25-75 % band", {"width": 0}),
    (50.0, "seeds' attainment: median front", {"color": "#555", "dash": "dash", "width": 1.5}),
)


def _band_traces(view: FrontView) -> list[go.Scatter]:
    """The seeds' 25-75 % attainment band (filled) and its median surface, as step lines."""
    band = view.band
    if band is None:
        return []
    traces = []
    for percentile, name, line in _BAND:
        corners = band.surfaces.get(percentile, ())
        traces.append(
            go.Scatter(
                x=[c for c, _ in corners],
                y=[a for _, a in corners],
                mode="lines",
                name=name,
                legendgroup="attainment",
                line={"shape": "hv", **line},
                fill="tonexty" if percentile == 25.0 else None,
                fillcolor="rgba(120, 120, 120, 0.18)",
                hoverinfo="skip",
                showlegend=percentile != 75.0,
                meta={
                    "view": view.cost_key,
                    "kind": "attainment",
                    "family": None,
                    "percentile": percentile,
                    "seeds": band.seeds,
                },
            )
        )
    return traces


def _confirmed_trace(view: FrontView, acc: str) -> go.Scatter | None:
    """The front of the seeds' means after ``paretotune confirm``: dashed, with intervals."""
    front = view.confirmed
    if front is None:
        return None
    style: dict[str, Any] = {
        "line": {"color": "#222", "width": 2, "dash": "dash", "shape": "hv"},
        "marker": {"symbol": "diamond-open", "size": 11, "color": "#222"},
    }
    bars = error_bars([p.row for p in front.points], acc)  # each mean with its seeds' t
    if bars:
        style["error_y"] = {**bars, "color": "#222"}
    trace = _front_trace(view, front, acc, name="confirmed front (seed means)", style=style)
    trace.meta = {**trace.meta, "kind": "confirmed_front"}
    return trace


def _view_traces(view: FrontView, acc: str) -> list[go.Scatter]:
    """One view's traces: the seeds' attainment band, points, family fronts, overall front,
    infeasible trials, presets, published results."""
    traces = _band_traces(view)
    traces += [_points_trace(view, f, acc) for f in view.families]
    traces += [_family_front_trace(view, f, acc) for f in view.families]
    traces.append(_overall_front_trace(view, acc))
    confirmed = _confirmed_trace(view, acc)
    if confirmed is not None:
        traces.append(confirmed)
    if view.infeasible:
        traces.append(_infeasible_trace(view))
    for reported in (True, False):
        group = [p for p in view.presets if (view.preset_accuracy(p) is not None) == reported]
        if group:
            traces.append(_preset_trace(view, group, reported))
    if view.published:
        traces.append(_published_trace(view))
    return traces


def _add_views(fig: go.Figure, views: Sequence[FrontView], acc: str) -> list[dict[str, Any]]:
    """Add every view's traces to ``fig`` (the first one visible); the menu that switches."""
    spans: list[tuple[int, int]] = []
    for view in views:
        start = len(fig.data)
        fig.add_traces(_view_traces(view, acc))
        spans.append((start, len(fig.data)))
    n = len(fig.data)
    buttons = []
    for i, (view, (a, b)) in enumerate(zip(views, spans)):
        if i > 0:
            for j in range(a, b):
                fig.data[j].visible = False
        relayout = {"xaxis.title.text": f"{view.title} (log scale)", "xaxis.autorange": True}
        buttons.append(
            {
                "label": view.title,
                "method": "update",
                "args": [{"visible": [a <= j < b for j in range(n)]}, relayout],
            }
        )
    if len(views) <= 1:
        return []
    return [
        {
            "buttons": buttons,
            "direction": "down",
            "x": 1.0,
            "xanchor": "right",
            "y": 1.12,
            "yanchor": "top",
            "showactive": True,
        }
    ]


def front_figure(data: ReportData) -> go.Figure:
    """Accuracy against cost (log x), per-family step fronts, overall front, cost dropdown."""
    front = data.front
    acc = front.accuracy_key
    fig = go.Figure()
    menus = _add_views(fig, front.views, acc)
    first = front.views[0].title if front.views else "cost"
    fig.update_layout(
        title=f"{data.results.name}: {acc} against cost, Pareto front per family and overall",
        xaxis={"type": "log", "title": {"text": f"{first} (log scale)"}},
        yaxis={"title": {"text": acc}, "tickformat": ".0%"},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        template="plotly_white",
        height=620,
        hovermode="closest",
        legend={"groupclick": "toggleitem"},
        updatemenus=menus,
    )
    return with_notes(fig, front.notes)

"""Which <family>: one figure per named dimension, drawn from ``ReportData.which``.

Left, the family's points coloured by the dimension's value (anytime points as diamonds)
with the family front as a line; right, each value's own front (its staircase). A legend
entry, e.g. ``N=32 (5 trials, +3 anytime)``, shows or hides a value in both panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from search.pareto import as_float

from ..data import ReportData
from ..dimensions import Dimension, DimensionValue, WhichFamily
from ..format import count_text, dimension_text, value_colour, value_label
from .common import HOVER, trial_hover, with_notes

__all__ = ["dimension_figure"]


def _origin(which: WhichFamily, row: Mapping[str, Any]) -> str:
    """``from trial X, k of T iterations`` for an anytime point; empty otherwise."""
    o = which.anytime.get(str(row.get("trial_id")))
    if o is None:
        return ""
    of = "" if o.of is None else f" of {o.of}"
    return f"anytime point: from trial {o.parent}, {o.iterations}{of} iterations"


def _scatter(
    which: WhichFamily, rows: Sequence[Mapping[str, Any]], acc: str, cost: str, **style: Any
) -> go.Scatter:
    """``rows`` at (cost, accuracy), each hover naming an anytime point's parent."""
    return go.Scatter(
        x=[as_float(r.get(cost)) for r in rows],
        y=[as_float(r.get(acc)) for r in rows],
        customdata=[str(r.get("trial_id")) for r in rows],
        text=[trial_hover(r, acc, _origin(which, r)) for r in rows],
        hovertemplate=HOVER,
        **style,
    )


def _value_traces(
    which: WhichFamily, dim: Dimension, i: int, v: DimensionValue
) -> tuple[go.Scatter, go.Scatter]:
    """Value ``v``'s points (left) and its staircase (right), one colour, one legend group."""
    fd = which.dimensions
    assert fd is not None
    acc, cost, c = fd.accuracy_key, fd.cost_key, value_colour(i)
    label = value_label(dim.name, v.value)
    meta = {"family": which.family, "dimension": dim.name, "value": v.value}
    symbols = ["diamond" if r.get("trial_id") in which.anytime else "circle" for r in v.rows]
    points = _scatter(
        which, v.rows, acc, cost,
        mode="markers", name=f"{label} ({count_text(v.n_trials, v.n_anytime)})",
        legendgroup=label, marker={"color": c, "size": 9, "symbol": symbols, "opacity": 0.8},
        meta={"kind": "dimension_points", **meta},
    )  # fmt: skip
    stairs = _scatter(
        which, [p.row for p in v.front.points], acc, cost,
        mode="lines+markers", name=label, legendgroup=label, showlegend=False,
        line={"color": c, "shape": "hv"}, marker={"color": c, "size": 6},
        meta={"kind": "dimension_front", **meta, "points": len(v.front)},
    )  # fmt: skip
    return points, _extended(stairs, fd.dearest)


def _extended(stairs: go.Scatter, dearest: float) -> go.Scatter:
    """The staircase held level up to ``dearest`` (the family's dearest cost), so values read
    side by side at any cost; the added point repeats the last one's trial and hover."""
    n = len(stairs.x)
    if n and dearest > stairs.x[-1]:
        stairs.update(
            x=[*stairs.x, dearest], y=[*stairs.y, stairs.y[-1]],
            customdata=[*stairs.customdata, stairs.customdata[-1]],
            text=[*stairs.text, stairs.text[-1]],
            marker={"size": [6] * n + [0]},
        )  # fmt: skip
    return stairs


def dimension_figure(data: ReportData, family: str, dimension: str) -> go.Figure:
    """``family``'s points coloured by ``dimension`` with its front, and each value's front."""
    which = data.which[family]
    fd = which.dimensions
    assert fd is not None
    dim = next(d for d in fd.dimensions if d.name == dimension)
    label = dimension_text(dim.name)
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.05,
        subplot_titles=(f"{family} trials by {label}, and the {family} front",
                        f"best {fd.accuracy_key} at cost <= x, per {label}"),
    )  # fmt: skip
    for i, v in enumerate(dim.values):
        points, stairs = _value_traces(which, dim, i, v)
        fig.add_trace(points, row=1, col=1)
        fig.add_trace(stairs, row=1, col=2)
    front = _scatter(
        which, [p.row for p in fd.front.points], fd.accuracy_key, fd.cost_key,
        mode="lines", name=f"{family} front", line={"color": "black", "width": 2, "shape": "hv"},
        meta={"kind": "family_front", "family": family, "dimension": dim.name},
    )  # fmt: skip
    fig.add_trace(front, row=1, col=1)
    fig.update_xaxes(type="log", title_text=f"{fd.cost_title} (log scale)")
    fig.update_yaxes(title_text=fd.accuracy_key, tickformat=".0%", row=1, col=1)
    fig.update_layout(
        title=f"Which {family}: {dim.name}",
        template="plotly_white",
        height=440,
        hovermode="closest",
        legend={"title": {"text": label}},
    )
    anytime = [f"diamonds are anytime points (k < T iterations of a weight-shared {family})"]
    return with_notes(fig, anytime if any(v.n_anytime for v in dim.values) else [])

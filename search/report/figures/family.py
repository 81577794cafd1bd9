"""One family's hyperparameters: parallel coordinates, and importance per objective."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data import ParcoordsAxis, ReportData
from ..format import PALETTE
from ..importance import Importance
from .common import message_figure, with_notes

__all__ = ["importance_figure", "parcoords_figure"]


def _dimension(axis: ParcoordsAxis) -> dict[str, Any]:
    """A Plotly ``Parcoords`` dimension of ``axis``."""
    dim: dict[str, Any] = {"label": axis.label, "values": list(axis.values)}
    if axis.tickvals is not None and axis.ticktext is not None:
        dim.update(tickvals=list(axis.tickvals), ticktext=list(axis.ticktext))
    return dim


def parcoords_figure(data: ReportData, family: str) -> go.Figure:
    """Parallel coordinates of one family's varying hyperparameters, coloured by accuracy."""
    pc = data.parcoords[family]
    acc = pc.accuracy_key
    title = f"{family}: hyperparameters of {len(pc.trial_ids)} measured trials, coloured by {acc}"
    if not pc.trial_ids:
        return message_figure(title, f"no COMPLETE {family} trial to draw")
    dims = [_dimension(a) for a in pc.axes]
    accs = list(pc.accuracy)
    dims.append({"label": acc, "values": accs})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            labelangle=-20,
            line={
                "color": accs,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": acc}},
            },
            meta={"kind": "parcoords", "family": family, "trial_ids": list(pc.trial_ids)},
        )
    )
    fig.update_layout(title=title, height=460, margin={"l": 70, "r": 40, "t": 130, "b": 40})
    return with_notes(fig, [] if pc.axes else [f"no {family} hyperparameter varies"])


def _importance_bars(fig: go.Figure, imp: Importance) -> None:
    """One horizontal bar chart per objective, the parameters on a shared y axis."""
    params = imp.params
    for col, (obj_name, values) in enumerate(imp.by_objective.items(), start=1):
        fig.add_trace(
            go.Bar(
                y=params,
                x=[values.get(p, 0.0) for p in params],
                orientation="h",
                name=obj_name,
                showlegend=False,
                marker={"color": PALETTE[(col + 2) % len(PALETTE)]},
                hovertemplate=f"{obj_name}: %{{y}} %{{x:.3f}}<extra></extra>",
                meta={"kind": "importance", "family": imp.family, "objective": obj_name},
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="importance (sums to 1)", row=1, col=col)


def importance_figure(data: ReportData, family: str) -> go.Figure:
    """Hyperparameter importance (Optuna fANOVA) of ``family`` for each objective."""
    imp = data.importance[family]
    title = f"{family}: hyperparameter importance per objective"
    if imp.unavailable is not None:
        return message_figure(title, imp.unavailable, imp.notes)
    fig = make_subplots(
        rows=1,
        cols=len(imp.by_objective),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"for {name}" for name in imp.by_objective],
    )
    _importance_bars(fig, imp)
    fig.update_layout(
        title=f"{title} (Optuna fANOVA over {imp.n_trials} trials from {imp.source})",
        template="plotly_white",
        height=max(260, 130 + 22 * len(imp.params)),
        margin={"l": 140},
    )
    return with_notes(fig, imp.notes)

"""How the search went: the hypervolume over the search, and the front members' curves."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from search.pareto import HypervolumeHistory, Reference

from ..data import LearningCurve, ReportData
from ..format import colour
from .common import with_notes

__all__ = ["hypervolume_figure", "learning_curves_figure"]


def _time_unit(total_s: float) -> tuple[float, str]:
    """Seconds per unit and its name for a time axis up to ``total_s``."""
    return (3600.0, "h") if total_s >= 7200 else (60.0, "min") if total_s >= 120 else (1.0, "s")


def _units(ref: Reference) -> str:
    """The hypervolume's unit, e.g. ``val_accuracy x log10(flops)``."""
    return " x ".join(
        f"log10({o.name})" if log else o.name for o, log in zip(ref.objectives, ref.log_scale)
    )


def _add_history(
    fig: go.Figure, family: str | None, hist: HypervolumeHistory, scale: float
) -> None:
    """One history as two step lines: per finished trial (left), per training time (right)."""
    style = {"color": "black", "width": 3} if family is None else {"color": colour(family)}
    name = "all families" if family is None else family
    xs_trial = list(range(1, len(hist.hypervolume) + 1))
    xs_time = [t / scale for t in hist.compute_time_s]
    for col, xs in ((1, xs_trial), (2, xs_time)):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=list(hist.hypervolume),
                mode="lines",
                line={**style, "shape": "hv"},
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                customdata=list(hist.trial_ids),
                hovertemplate=f"{name}<br>after %{{customdata}}<br>HV %{{y:.4g}}<extra></extra>",
                meta={
                    "kind": "hypervolume",
                    "family": family,
                    "x": "trial" if col == 1 else "time",
                },
            ),
            row=1,
            col=col,
        )


def hypervolume_figure(data: ReportData) -> go.Figure:
    """Hypervolume (experiment objectives) after each finished trial and against compute."""
    hv = data.hypervolume
    ref = hv.reference
    total_s = hv.overall.compute_time_s[-1] if hv.overall.compute_time_s else 0.0
    scale, unit = _time_unit(total_s)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=("after each finished trial", f"against cumulative training time ({unit})"),
    )
    _add_history(fig, None, hv.overall, scale)
    for fam, hist in hv.by_family.items():
        _add_history(fig, fam, hist, scale)
    units = _units(ref)
    fig.update_xaxes(title_text="finished trials", row=1, col=1)
    fig.update_xaxes(title_text=f"training time ({unit}, all trials)", row=1, col=2)
    fig.update_yaxes(title_text=f"hypervolume ({units})", row=1, col=1)
    fig.update_layout(
        title=f"Hypervolume over the search (reference: {ref.describe()})",
        template="plotly_white",
        height=420,
    )
    return with_notes(
        fig,
        [
            f"Reference point: {ref.describe()}; unit: {units}. Fixed over the whole curve, so "
            "a rise is a real gain (see docs/report.md)."
        ],
    )


def _curve_trace(curve: LearningCurve, showlegend: bool) -> go.Scatter:
    """One member's curve: solid and bold on the overall front, dotted otherwise."""
    fam, overall = curve.family, curve.overall
    return go.Scatter(
        x=list(curve.epochs),
        y=list(curve.accuracy),
        mode="lines+markers",
        name=fam,
        legendgroup=fam,
        showlegend=showlegend,
        line={
            "color": colour(fam),
            "width": 3 if overall else 1.5,
            "dash": "solid" if overall else "dot",
        },
        marker={"size": 5},
        customdata=[curve.trial_id] * len(curve.epochs),
        hovertemplate=f"{html.escape(curve.trial_id)} ({fam})"
        f"{' on the overall front' if overall else ''}<br>epoch %{{x}}: "
        "%{y:.4f}<extra></extra>",
        meta={
            "kind": "learning_curve",
            "family": fam,
            "trial_id": curve.trial_id,
            "overall_front": overall,
        },
    )


def learning_curves_figure(data: ReportData) -> go.Figure:
    """Validation accuracy per epoch of every family-front member (overall front bold)."""
    lc = data.learning_curves
    fig = go.Figure()
    shown: set[str] = set()
    for curve in lc.curves:
        fig.add_trace(_curve_trace(curve, curve.family not in shown))
        shown.add(curve.family)
    fig.update_layout(
        title="Learning curves of the front members (solid: overall front; dotted: family front)",
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": f"{lc.accuracy_key} (per epoch)"}, "tickformat": ".0%"},
        template="plotly_white",
        height=460,
    )
    notes = [f"no per-epoch history for {', '.join(lc.missing)}"] if lc.missing else []
    return with_notes(fig, notes)

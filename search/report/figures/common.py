"""What every figure shares: notes carried in the layout's ``meta``, the message figure, and
a trial's hover text."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from search.pareto import as_float, row_interval
from search.pareto.membership import FAMILY_SD_SUFFIX, seed_values

from ..format import cost_text, esc, pct, si
from ..inputs import config

__all__ = [
    "HOVER",
    "error_bars",
    "interval_text",
    "message_figure",
    "notes",
    "trial_hover",
    "with_notes",
]

#: The hovertemplate of a trace whose ``text`` is :func:`trial_hover`.
HOVER = "%{text}<extra></extra>"


def trial_hover(row: Mapping[str, Any], acc_key: str, origin: str = "") -> str:
    """A trial's hover text: id, family, status, accuracy, costs, epochs and config; ``origin``
    (e.g. an anytime point's parent) is a line of its own under the id."""
    cfg = "<br>".join(f"  {esc(k)}: {esc(v)}" for k, v in config(row).items())
    return (
        f"<b>{esc(row.get('trial_id'))}</b> ({esc(row.get('family'))},"
        f" #{row.get('number')}, {row.get('status')})<br>"
        + (f"{esc(origin)}<br>" if origin else "")
        + f"{acc_key}: {as_float(row.get(acc_key)):.4f} ({pct(row.get(acc_key))})"
        f"{interval_text(row, acc_key)}<br>"
        f"FLOPs: {si(row.get('flops'))} | params: {si(row.get('params'))} | "
        f"latency: {cost_text('latency_ms', row.get('latency_ms'))}<br>"
        f"epochs: {row.get('epochs_run')}<br>config:<br>{cfg}"
    )


def interval_text(row: Mapping[str, Any], acc_key: str) -> str:
    """`` [85.6%, 87.0%] 95%, 2 seed(s), family seed sd 0.49 pts``, `` [..] 95% t, 2 seeds``
    or `` [..] 95% Wilson, 6,000 images``: ``row``'s interval for ``acc_key``
    (:func:`search.pareto.row_interval`, which says which applies), else ""."""
    span = row_interval(row, acc_key)
    if span is None:
        return ""
    seeds = seed_values(row, acc_key)
    family_sd = row.get(acc_key + FAMILY_SD_SUFFIX)
    if isinstance(family_sd, (int, float)):
        return (
            f" [{pct(span[0])}, {pct(span[1])}] 95%, {max(len(seeds), 1)} seed(s), "
            f"family seed sd {100 * family_sd:.2f} pts"
        )
    if len(seeds) >= 2:
        return f" [{pct(span[0])}, {pct(span[1])}] 95% t, {len(seeds)} seeds"
    n = row.get(f"{acc_key.split('_', 1)[0]}_images")
    size = f", {int(n):,} images" if isinstance(n, (int, float)) else ""
    return f" [{pct(span[0])}, {pct(span[1])}] 95% Wilson{size}"


def error_bars(rows: Sequence[Mapping[str, Any]], acc_key: str) -> dict[str, Any] | None:
    """Plotly ``error_y`` for ``rows``' accuracies from their intervals (the seeds' t interval,
    else the evaluation set's Wilson); None when no row has one (a bar is missing where its
    row has none)."""
    acc = [as_float(r.get(acc_key)) for r in rows]
    spans = [row_interval(r, acc_key) or (math.nan, math.nan) for r in rows]
    low, high = [s[0] for s in spans], [s[1] for s in spans]
    if not any(math.isfinite(v) for v in low):
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": [h - a for a, h in zip(acc, high)],
        "arrayminus": [a - lo for a, lo in zip(acc, low)],
        "thickness": 1.2,
        "width": 3,
    }


def notes(fig: go.Figure) -> list[str]:
    """The notes the page prints under ``fig`` (``layout.meta["notes"]``)."""
    meta = fig.layout.meta
    return list(meta.get("notes", [])) if isinstance(meta, Mapping) else []


def with_notes(fig: go.Figure, notes: Sequence[str]) -> go.Figure:
    """``fig`` carrying ``notes`` for the page to print under it."""
    fig.update_layout(meta={"notes": list(notes)})
    return fig


def message_figure(title: str, message: str, notes: Sequence[str] = ()) -> go.Figure:
    """An empty figure that says ``message`` (also its first note)."""
    fig = go.Figure()
    fig.add_annotation(
        text=html.escape(message),
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14},
    )
    fig.update_layout(
        title=title,
        height=220,
        xaxis={"visible": False},
        yaxis={"visible": False},
        template="plotly_white",
    )
    return with_notes(fig, [message, *notes])

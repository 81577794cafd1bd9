"""What every figure shares: notes carried in the layout's ``meta``, and the message figure."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

__all__ = ["message_figure", "notes", "with_notes"]


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

"""The interactive report: one self-contained ``report.html`` for a results directory.

``pareto.py`` computes, this module draws: every front, hypervolume and matched-cost number
shown here comes from :mod:`search.pareto`. The page embeds plotly.js once (inline, no CDN, no
network), then one ``<div>`` per figure. How to read it: ``docs/report.md``.

    write_report(results_dir, png=False) -> ReportFiles   # path-like: os.fspath() -> report.html
    load_results(results_dir) -> Results
    build_figures(results, presets=None) -> dict[str, go.Figure]
    render_html(results, figures) -> str
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import yaml
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from search import pareto
from search.errors import UserError
from search.pareto import Objective, as_float

__all__ = [
    "COST_AXES",
    "MAIN_FIGURES",
    "PresetPoint",
    "ReportFiles",
    "Results",
    "build_figures",
    "load_results",
    "preset_points",
    "render_html",
    "write_report",
]

#: Cost columns the front figure can put on its x axis (the dropdown), with axis titles.
COST_AXES: tuple[tuple[str, str], ...] = (
    ("flops", "forward FLOPs per image"),
    ("params", "parameters"),
    ("latency_ms", "latency, batch 1 (ms)"),
)
#: Figures exported as PNG by ``write_report(..., png=True)``.
MAIN_FIGURES: tuple[str, ...] = ("front", "hypervolume", "learning_curves")

_FAMILY_ORDER = ("perceiver", "vit", "mixer", "fnet", "gmlp")
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_STATUSES = ("COMPLETE", "STOPPED", "FAILED", "INFEASIBLE", "DUPLICATE")
_MIN_IMPORTANCE_TRIALS = 3
_ROUGH_IMPORTANCE_TRIALS = 20


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Results:
    """A results directory's ``trials.json``: experiment, objectives and trial rows."""

    #: A local folder, or an object-store URI (text; see search.storage).
    directory: Path | str
    experiment: dict[str, Any]
    objectives: tuple[Objective, ...]
    rows: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.experiment.get("name") or str(self.directory).rstrip("/").rsplit("/")[-1])

    @property
    def families(self) -> tuple[str, ...]:
        return _family_sort({str(r.get("family")) for r in self.rows})

    @property
    def accuracy_key(self) -> str:
        """The first "max" objective (the accuracy the front is drawn against)."""
        return next((o.name for o in self.objectives if o.direction == "max"), "val_accuracy")

    @property
    def cost_key(self) -> str:
        """The first "min" objective (the cost the matched-accuracy table uses)."""
        return next((o.name for o in self.objectives if o.direction == "min"), "flops")


@dataclass(frozen=True)
class PresetPoint:
    """A seed example's configuration placed at its estimated cost (``models.PRESETS``)."""

    name: str
    family: str
    flops: float
    params: float
    latency_ms: float | None
    reported_top1: float | None
    source: str
    dataset: str

    def cost(self, key: str) -> float | None:
        return {"flops": self.flops, "params": self.params, "latency_ms": self.latency_ms}.get(key)


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


def load_results(results_dir: str | os.PathLike[str]) -> Results:
    """Read ``<results_dir>/trials.json`` (see docs/architecture.md, "Results directory")."""
    from search import storage

    directory: Path | str = (
        storage.normalize(results_dir)
        if isinstance(results_dir, str) and storage.is_uri(results_dir)
        else Path(results_dir)
    )
    path = storage.join(directory, "trials.json")
    if not storage.is_file(path):
        raise UserError(f"{path}: not found; is {directory} a paretotune results directory?")
    try:
        doc = json.loads(storage.read_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from exc
    objectives = doc.get("objectives") or {"val_accuracy": "max", "flops": "min"}
    rows = tuple(dict(r) for r in doc.get("trials", []))
    return Results(
        directory, dict(doc.get("experiment") or {}), pareto.as_objectives(objectives), rows
    )


# ---------------------------------------------------------------------------------------------
# Formatting helpers


def _family_sort(families: Iterable[str]) -> tuple[str, ...]:
    order = {f: i for i, f in enumerate(_FAMILY_ORDER)}
    return tuple(sorted(families, key=lambda f: (order.get(f, len(order)), f)))


def _colour(family: str) -> str:
    if family in _FAMILY_ORDER:
        return _PALETTE[_FAMILY_ORDER.index(family)]
    return _PALETTE[len(_FAMILY_ORDER) + sum(map(ord, family)) % 2]


def _si(value: Any, unit: str = "") -> str:
    """``58720256 -> '58.7 M'`` (+ unit)."""
    v = as_float(value)
    if not math.isfinite(v):
        return "n/a"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.3g} {prefix}{unit}".strip()
    return f"{v:.3g} {unit}".strip()


def _cost_text(key: str, value: Any) -> str:
    if key == "latency_ms":
        v = as_float(value)
        return f"{v:.3g} ms" if math.isfinite(v) else "n/a"
    return _si(value, "FLOPs" if key == "flops" else "")


def _pct(value: Any) -> str:
    v = as_float(value)
    return f"{100 * v:.1f}%" if math.isfinite(v) else "n/a"


def _config(row: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's configuration: ``row["config"]``, else its ``hp.*`` columns."""
    cfg = row.get("config")
    if isinstance(cfg, Mapping) and cfg:
        return dict(cfg)
    return {k[3:]: v for k, v in row.items() if k.startswith("hp.")}


def _hover(row: Mapping[str, Any], acc_key: str) -> str:
    cfg = "<br>".join(
        f"  {html.escape(str(k))}: {html.escape(str(v))}" for k, v in _config(row).items()
    )
    return (
        f"<b>{html.escape(str(row.get('trial_id')))}</b> ({html.escape(str(row.get('family')))},"
        f" #{row.get('number')}, {row.get('status')})<br>"
        f"{acc_key}: {as_float(row.get(acc_key)):.4f} ({_pct(row.get(acc_key))})<br>"
        f"FLOPs: {_si(row.get('flops'))} | params: {_si(row.get('params'))} | "
        f"latency: {_cost_text('latency_ms', row.get('latency_ms'))}<br>"
        f"epochs: {row.get('epochs_run')}<br>config:<br>{cfg}"
    )


def _notes(fig: go.Figure) -> list[str]:
    meta = fig.layout.meta
    return list(meta.get("notes", [])) if isinstance(meta, Mapping) else []


def _with_notes(fig: go.Figure, notes: Sequence[str]) -> go.Figure:
    fig.update_layout(meta={"notes": list(notes)})
    return fig


def _message_figure(title: str, message: str, notes: Sequence[str] = ()) -> go.Figure:
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
    return _with_notes(fig, [message, *notes])


# ---------------------------------------------------------------------------------------------
# Presets


def preset_points() -> tuple[list[PresetPoint], list[str]]:
    """The seed presets at their estimated cost, and notes on any that could not be placed.

    Uses ``models.PRESETS`` and ``models.cost.estimate`` (imports torch). Never raises: when
    the models package is not importable the list is empty and the note says why.
    """
    try:
        import models
        from models import cost as model_cost

        presets = dict(models.PRESETS)
        estimate = model_cost.estimate
    except Exception as exc:  # the report must not fail on a broken models/
        return [], [
            f"seed presets not drawn: models.PRESETS / models.cost.estimate "
            f"unavailable ({type(exc).__name__}: {exc})"
        ]
    points: list[PresetPoint] = []
    notes: list[str] = []
    for name, p in presets.items():
        try:
            c = estimate(
                p.family,
                image_size=p.image_size,
                in_channels=p.in_channels,
                num_classes=p.num_classes,
                **p.hparams,
            )
        except Exception as exc:
            notes.append(f"preset {name}: cost estimate failed ({type(exc).__name__}: {exc})")
            continue
        points.append(
            PresetPoint(
                name=name,
                family=p.family,
                flops=float(c.flops),
                params=float(c.params),
                latency_ms=None if c.latency_ms_b1 is None else float(c.latency_ms_b1),
                reported_top1=p.reported_top1,
                source=str(p.source),
                dataset=f"{p.num_classes} classes, {p.image_size}x{p.image_size}x{p.in_channels}",
            )
        )
    return points, notes


# ---------------------------------------------------------------------------------------------
# Figures: one private function per section


def _front_traces(results: Results, key: str, presets: Sequence[PresetPoint]) -> list[go.Scatter]:
    """Traces of the accuracy-vs-``key`` view: points, family fronts, overall front, presets."""
    acc = results.accuracy_key
    objs = {acc: "max", key: "min"}
    fr = pareto.fronts(results.rows, objs)
    traces: list[go.Scatter] = []
    for fam in _family_sort(fr.by_family):
        pts = [r for r in fr.eligible if str(r.get("family")) == fam]
        traces.append(
            go.Scatter(
                x=[as_float(r[key]) for r in pts],
                y=[as_float(r[acc]) for r in pts],
                mode="markers",
                name=fam,
                legendgroup=fam,
                customdata=[str(r.get("trial_id")) for r in pts],
                marker={"color": _colour(fam), "size": 8, "opacity": 0.45},
                text=[_hover(r, acc) for r in pts],
                hovertemplate="%{text}<extra></extra>",
                meta={"view": key, "kind": "points", "family": fam},
            )
        )
    for fam in _family_sort(fr.by_family):
        front = fr.by_family[fam]
        traces.append(
            go.Scatter(
                x=list(front.column(key)),
                y=list(front.column(acc)),
                mode="lines+markers",
                name=f"{fam} front",
                legendgroup=fam,
                line={"color": _colour(fam), "shape": "hv"},
                marker={"color": _colour(fam), "size": 9},
                customdata=list(front.trial_ids),
                text=[_hover(p.row, acc) for p in front.points],
                hovertemplate="%{text}<extra></extra>",
                meta={"view": key, "kind": "family_front", "family": fam},
            )
        )
    overall = fr.overall
    traces.append(
        go.Scatter(
            x=list(overall.column(key)),
            y=list(overall.column(acc)),
            mode="lines+markers",
            name="overall front",
            line={"color": "black", "width": 3, "shape": "hv"},
            marker={"symbol": "circle-open", "size": 15, "color": "black", "line": {"width": 2}},
            customdata=list(overall.trial_ids),
            text=[_hover(p.row, acc) for p in overall.points],
            hovertemplate="%{text}<extra></extra>",
            meta={"view": key, "kind": "overall_front", "family": None},
        )
    )
    infeasible = [
        r
        for r in results.rows
        if r.get("status") == "INFEASIBLE"
        and math.isfinite(as_float(r.get(key)))
        and as_float(r.get(key)) > 0
    ]
    if infeasible:
        traces.append(
            go.Scatter(
                x=[as_float(r[key]) for r in infeasible],
                y=[0.02] * len(infeasible),
                yaxis="y2",
                mode="markers",
                name="infeasible (over budget, not trained)",
                marker={"symbol": "x-thin", "size": 10, "line": {"width": 2, "color": "grey"}},
                customdata=[str(r.get("trial_id")) for r in infeasible],
                text=[
                    f"{html.escape(str(r.get('trial_id')))} ({r.get('family')}): INFEASIBLE<br>"
                    f"{html.escape(str(r.get('failure_reason') or ''))}"
                    for r in infeasible
                ],
                hovertemplate="%{text}<extra></extra>",
                meta={"view": key, "kind": "infeasible", "family": None},
            )
        )
    placed = [p for p in presets if p.cost(key) is not None and (p.cost(key) or 0) > 0]
    for reported in (True, False):
        group = sorted(
            (p for p in placed if (p.reported_top1 is not None) == reported),
            key=lambda p: p.cost(key) or 0.0,
        )
        if not group:
            continue
        traces.append(
            go.Scatter(
                x=[p.cost(key) for p in group],
                y=[p.reported_top1 for p in group] if reported else [0.07] * len(group),
                yaxis="y" if reported else "y2",
                mode="markers+text",
                name="seed presets" + ("" if reported else " (accuracy not reported)"),
                text=[p.name for p in group],
                textposition=[
                    "top center" if i % 2 == 0 else "bottom center" for i in range(len(group))
                ],
                textfont={"size": 10, "color": "#444"},
                marker={
                    "symbol": "star-diamond" if reported else "star-diamond-open",
                    "size": 14,
                    "color": [_colour(p.family) for p in group],
                    "line": {"width": 1, "color": "black"},
                },
                hovertext=[
                    f"<b>preset {html.escape(p.name)}</b> ({p.family})<br>"
                    f"{_cost_text(key, p.cost(key))} (estimated)<br>reported test top-1: "
                    f"{_pct(p.reported_top1)} on the seed's data ({p.dataset}),<br>"
                    f"not this sweep's validation set<br>source: {html.escape(p.source)}"
                    for p in group
                ],
                hovertemplate="%{hovertext}<extra></extra>",
                meta={"view": key, "kind": "preset", "family": None, "reported": reported},
            )
        )
    return traces


def _front_figure(
    results: Results, presets: Sequence[PresetPoint], preset_notes: Sequence[str]
) -> go.Figure:
    """Accuracy against cost (log x), per-family step fronts, overall front, cost dropdown."""
    acc = results.accuracy_key
    views = [
        (k, title)
        for k, title in COST_AXES
        if any(
            pareto.is_eligible(r, pareto.as_objectives({acc: "max", k: "min"}))
            for r in results.rows
        )
    ]
    fig = go.Figure()
    spans: list[tuple[int, int]] = []
    for key, _ in views:
        start = len(fig.data)
        fig.add_traces(_front_traces(results, key, presets))
        spans.append((start, len(fig.data)))
    n = len(fig.data)
    buttons = []
    for i, ((_, title), (a, b)) in enumerate(zip(views, spans)):
        visible = [a <= j < b for j in range(n)]
        if i > 0:
            for j in range(a, b):
                fig.data[j].visible = False
        buttons.append(
            {
                "label": title,
                "method": "update",
                "args": [
                    {"visible": visible},
                    {"xaxis.title.text": f"{title} (log scale)", "xaxis.autorange": True},
                ],
            }
        )
    first = views[0][1] if views else "cost"
    fig.update_layout(
        title=f"{results.name}: {acc} against cost, Pareto front per family and overall",
        xaxis={"type": "log", "title": {"text": f"{first} (log scale)"}},
        yaxis={"title": {"text": acc}, "tickformat": ".0%"},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        template="plotly_white",
        height=620,
        hovermode="closest",
        legend={"groupclick": "toggleitem"},
        updatemenus=[
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
        if len(views) > 1
        else [],
    )
    notes = list(preset_notes)
    if not views:
        notes.append("no COMPLETE trial with finite objectives: nothing to draw")
    return _with_notes(fig, notes)


def _hypervolume_figure(results: Results) -> go.Figure:
    """Hypervolume (experiment objectives) after each finished trial and against compute."""
    ref = pareto.default_reference(results.rows, results.objectives)
    overall = pareto.hypervolume_history(results.rows, results.objectives, ref)
    total_s = overall.compute_time_s[-1] if overall.compute_time_s else 0.0
    scale, unit = (
        (3600.0, "h") if total_s >= 7200 else (60.0, "min") if total_s >= 120 else (1.0, "s")
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=("after each finished trial", f"against cumulative training time ({unit})"),
    )
    histories = [(None, overall)] + [
        (fam, pareto.hypervolume_history(results.rows, results.objectives, ref, family=fam))
        for fam in results.families
    ]
    for fam, hist in histories:
        style = {"color": "black", "width": 3} if fam is None else {"color": _colour(fam)}
        name = "all families" if fam is None else fam
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
                    hovertemplate=f"{name}<br>after %{{customdata}}<br>HV %{{y:.4g}}"
                    "<extra></extra>",
                    meta={
                        "kind": "hypervolume",
                        "family": fam,
                        "x": "trial" if col == 1 else "time",
                    },
                ),
                row=1,
                col=col,
            )
    units = " x ".join(
        f"log10({o.name})" if log else o.name for o, log in zip(ref.objectives, ref.log_scale)
    )
    fig.update_xaxes(title_text="finished trials", row=1, col=1)
    fig.update_xaxes(title_text=f"training time ({unit}, all trials)", row=1, col=2)
    fig.update_yaxes(title_text=f"hypervolume ({units})", row=1, col=1)
    fig.update_layout(
        title=f"Hypervolume over the search (reference: {ref.describe()})",
        template="plotly_white",
        height=420,
    )
    return _with_notes(
        fig,
        [
            f"Reference point: {ref.describe()}; unit: {units}. Fixed over the whole curve, so "
            "a rise is a real gain (see docs/report.md)."
        ],
    )


def _front_members(results: Results) -> list[tuple[dict[str, Any], bool]]:
    """Union of the per-family fronts (experiment objectives), flagged if on the overall one."""
    fr = pareto.fronts(results.rows, results.objectives)
    on_overall = set(fr.overall.trial_ids)
    members: list[tuple[dict[str, Any], bool]] = []
    for fam in _family_sort(fr.by_family):
        for p in fr.by_family[fam].points:
            members.append((dict(p.row), p.trial_id in on_overall))
    return members


def _learning_curves_figure(results: Results) -> go.Figure:
    """Validation accuracy per epoch of every family-front member (overall front bold)."""
    acc = results.accuracy_key
    fig = go.Figure()
    shown: set[str] = set()
    missing = []
    for row, overall in _front_members(results):
        hist = [h for h in (row.get("history") or []) if math.isfinite(as_float(h.get(acc)))]
        if not hist:
            missing.append(str(row.get("trial_id")))
            continue
        fam = str(row.get("family"))
        fig.add_trace(
            go.Scatter(
                x=[h.get("epoch") for h in hist],
                y=[as_float(h.get(acc)) for h in hist],
                mode="lines+markers",
                name=fam,
                legendgroup=fam,
                showlegend=fam not in shown,
                line={
                    "color": _colour(fam),
                    "width": 3 if overall else 1.5,
                    "dash": "solid" if overall else "dot",
                },
                marker={"size": 5},
                customdata=[str(row.get("trial_id"))] * len(hist),
                hovertemplate=f"{html.escape(str(row.get('trial_id')))} ({fam})"
                f"{' on the overall front' if overall else ''}<br>epoch %{{x}}: "
                "%{y:.4f}<extra></extra>",
                meta={
                    "kind": "learning_curve",
                    "family": fam,
                    "trial_id": str(row.get("trial_id")),
                    "overall_front": overall,
                },
            )
        )
        shown.add(fam)
    fig.update_layout(
        title="Learning curves of the front members (solid: overall front; dotted: family front)",
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": f"{acc} (per epoch)"}, "tickformat": ".0%"},
        template="plotly_white",
        height=460,
    )
    notes = [f"no per-epoch history for {', '.join(missing)}"] if missing else []
    return _with_notes(fig, notes)


def _hp_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``hp.*`` columns (without the prefix) that vary across ``rows``; else config keys."""
    keys = sorted({k for r in rows for k in r if k.startswith("hp.")})
    if keys:
        names = [k[3:] for k in keys]
        values = {n: [r.get(f"hp.{n}") for r in rows] for n in names}
    else:
        names = sorted({k for r in rows for k in _config(r)})
        values = {n: [_config(r).get(n) for r in rows] for n in names}
    return [
        n for n in names if len({json.dumps(v, sort_keys=True, default=str) for v in values[n]}) > 1
    ]


def _hp_value(row: Mapping[str, Any], name: str) -> Any:
    return row[f"hp.{name}"] if f"hp.{name}" in row else _config(row).get(name)


_LOG_PARAMS = frozenset({"lr", "weight_decay"})


def _log_scaled(name: str, lo: float, hi: float) -> bool:
    """Whether a positive numeric hyperparameter reads better in log10: the learning rate and
    weight decay (searched on a log scale), or anything spanning two decades or more."""
    return lo > 0 and ((name in _LOG_PARAMS and hi > lo) or hi / lo >= 100)


def _parcoords_dimension(name: str, values: Sequence[Any]) -> dict[str, Any]:
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        for v in values
    )
    if numeric:
        nums = [float(v) for v in values]
        lo, hi = min(nums), max(nums)
        if _log_scaled(name, lo, hi):
            return {"label": f"log10({name})", "values": [math.log10(v) for v in nums]}
        return {"label": name, "values": nums}
    labels = ["n/a" if v is None else str(v) for v in values]
    cats = sorted(set(labels))
    return {
        "label": name,
        "values": [cats.index(s) for s in labels],
        "tickvals": list(range(len(cats))),
        "ticktext": cats,
    }


def _parcoords_figure(results: Results, family: str) -> go.Figure:
    """Parallel coordinates of one family's varying hyperparameters, coloured by accuracy."""
    acc = results.accuracy_key
    rows = [
        r
        for r in pareto.eligible_rows(results.rows, results.objectives)
        if str(r.get("family")) == family
    ]
    title = f"{family}: hyperparameters of {len(rows)} measured trials, coloured by {acc}"
    if not rows:
        return _message_figure(title, f"no COMPLETE {family} trial to draw")
    names = _hp_columns(rows)
    dims = [_parcoords_dimension(n, [_hp_value(r, n) for r in rows]) for n in names]
    accs = [as_float(r.get(acc)) for r in rows]
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
            meta={
                "kind": "parcoords",
                "family": family,
                "trial_ids": [str(r.get("trial_id")) for r in rows],
            },
        )
    )
    fig.update_layout(title=title, height=460, margin={"l": 70, "r": 40, "t": 130, "b": 40})
    return _with_notes(fig, [] if names else [f"no {family} hyperparameter varies"])


def _infer_distribution(name: str, values: Sequence[Any]) -> Any:
    """An Optuna distribution covering ``values`` (bool/str/other -> categorical)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return IntDistribution(min(values), max(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        lo, hi = float(min(values)), float(max(values))
        return FloatDistribution(lo, hi, log=_log_scaled(name, lo, hi))
    choices = sorted(
        {v if isinstance(v, (bool, int, float, str)) or v is None else str(v) for v in values},
        key=lambda c: (str(type(c)), str(c)),
    )
    return CategoricalDistribution(choices)


def _categorical_value(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str)) or v is None else str(v)


_METRIC_ALIASES = {"latency_ms": "latency"}  # trials.json column -> study metric name


def _stored_family_study(
    db: Path, results: Results, family: str, numbers: set[int]
) -> tuple[Any, list[int]]:
    """``family``'s measured trials copied from the stored study into an in-memory one.

    Parameters lose their ``<family>.`` prefix and the ``family`` choice itself; objective
    ``i`` of ``results.objectives`` is ``values[index[i]]`` (matched by metric name).
    """
    import optuna

    storage = f"sqlite:///{db}"
    names = optuna.study.get_all_study_names(storage)
    name = results.name if results.name in names or len(names) != 1 else names[0]
    stored = optuna.load_study(study_name=name, storage=storage)
    objective_names = [o.name for o in results.objectives]
    metric_names = stored.metric_names or objective_names
    index = []
    for pos, n in enumerate(objective_names):
        alias = _METRIC_ALIASES.get(n, n)
        index.append(
            metric_names.index(n)
            if n in metric_names
            else metric_names.index(alias)
            if alias in metric_names
            else pos
        )
    prefix = f"{family}."
    study = optuna.create_study(directions=stored.directions)
    for t in stored.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.number not in numbers or t.values is None:
            continue
        recorded = t.user_attrs.get("family", t.params.get("family", family))
        if recorded != family:
            raise ValueError(
                f"trial {t.number} is {recorded!r} in the study but {family!r} in trials.json"
            )
        keep = {k: k.removeprefix(prefix) for k in t.params if k != "family"}
        study.add_trial(
            optuna.trial.create_trial(
                params={new: t.params[old] for old, new in keep.items()},
                distributions={new: t.distributions[old] for old, new in keep.items()},
                values=t.values,
            )
        )
    return study, index


def _family_study(results: Results, family: str) -> tuple[Any, list[int], str, list[str]]:
    """An in-memory study of ``family``'s measured trials, the value index of each objective,
    where the trials came from (``optuna.db`` or ``trials.json``) and notes."""
    import optuna

    directions = [
        optuna.study.StudyDirection.MAXIMIZE
        if o.direction == "max"
        else optuna.study.StudyDirection.MINIMIZE
        for o in results.objectives
    ]
    rows = [
        r
        for r in pareto.eligible_rows(results.rows, results.objectives)
        if str(r.get("family")) == family
    ]
    numbers = {
        int(as_float(r.get("number"))) for r in rows if math.isfinite(as_float(r.get("number")))
    }
    names = [o.name for o in results.objectives]
    db = Path(results.directory) / "optuna.db"
    notes = []
    if isinstance(results.directory, Path) and db.is_file():
        try:
            return (*_stored_family_study(db, results, family, numbers), "optuna.db", [])
        except Exception as exc:  # fall back to trials.json below, and say so
            notes.append(f"{family}: optuna.db not used ({type(exc).__name__}: {exc})")
    hp_names = _hp_columns(rows)
    dists = {n: _infer_distribution(n, [_hp_value(r, n) for r in rows]) for n in hp_names}
    study = optuna.create_study(directions=directions)
    for r in rows:
        params = {}
        for n in hp_names:
            v = _hp_value(r, n)
            params[n] = (
                _categorical_value(v)
                if isinstance(dists[n], optuna.distributions.CategoricalDistribution)
                else v
            )
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                values=[as_float(r.get(o.name)) for o in results.objectives],
            )
        )
    return study, list(range(len(names))), "trials.json", notes


def _value_at(i: int) -> Callable[[Any], float]:
    """The importance target for objective ``i`` of a multi-objective trial."""

    def target(trial: Any) -> float:
        return float(trial.values[i])

    return target


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO lines ("A new study created in memory ...") while building."""
    import optuna

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def _importance_figure(results: Results, family: str) -> go.Figure:
    """Hyperparameter importance (Optuna fANOVA) of ``family`` for each objective."""
    import optuna

    title = f"{family}: hyperparameter importance per objective"
    try:
        with _quiet_optuna():
            study, index, source, notes = _family_study(results, family)
    except Exception as exc:
        return _message_figure(title, f"importance unavailable: {type(exc).__name__}: {exc}")
    n = len(study.trials)
    if n < _MIN_IMPORTANCE_TRIALS:
        return _message_figure(
            title,
            f"importance needs at least {_MIN_IMPORTANCE_TRIALS} "
            f"measured {family} trials; there are {n}",
            notes,
        )
    importances: dict[str, dict[str, float]] = {}
    for obj, i in zip(results.objectives, index):
        try:
            importances[obj.name] = optuna.importance.get_param_importances(
                study,
                target=_value_at(i),
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
            )
        except Exception as exc:
            notes.append(f"{obj.name}: importance unavailable ({type(exc).__name__}: {exc})")
    if not importances or not any(importances.values()):
        return _message_figure(title, "no hyperparameter importance could be computed", notes)
    first = next(iter(importances.values()))
    params = sorted(
        {p for imp in importances.values() for p in imp}, key=lambda p: first.get(p, 0.0)
    )
    fig = make_subplots(
        rows=1,
        cols=len(importances),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"for {name}" for name in importances],
    )
    for col, (obj_name, imp) in enumerate(importances.items(), start=1):
        fig.add_trace(
            go.Bar(
                y=params,
                x=[imp.get(p, 0.0) for p in params],
                orientation="h",
                name=obj_name,
                showlegend=False,
                marker={"color": _PALETTE[(col + 2) % len(_PALETTE)]},
                hovertemplate=f"{obj_name}: %{{y}} %{{x:.3f}}<extra></extra>",
                meta={"kind": "importance", "family": family, "objective": obj_name},
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="importance (sums to 1)", row=1, col=col)
    fig.update_layout(
        title=f"{title} (Optuna fANOVA over {n} trials from {source})",
        template="plotly_white",
        height=max(260, 130 + 22 * len(params)),
        margin={"l": 140},
    )
    if n < _ROUGH_IMPORTANCE_TRIALS:
        notes.append(f"{family}: only {n} measured trials; importances this early are rough hints")
    return _with_notes(fig, notes)


def build_figures(
    results: Results, *, presets: Sequence[PresetPoint] | None = None
) -> dict[str, go.Figure]:
    """All figures of the report, keyed ``front``, ``hypervolume``, ``learning_curves``,
    ``parcoords:<family>``, ``importance:<family>``.

    ``presets=None`` places ``models.PRESETS`` (imports torch); pass ``[]`` to leave them out.
    """
    notes: list[str] = []
    if presets is None:
        found, notes = preset_points()
        presets = found
    figs = {
        "front": _front_figure(results, presets, notes),
        "hypervolume": _hypervolume_figure(results),
        "learning_curves": _learning_curves_figure(results),
    }
    for fam in results.families:
        figs[f"parcoords:{fam}"] = _parcoords_figure(results, fam)
        figs[f"importance:{fam}"] = _importance_figure(results, fam)
    return figs


# ---------------------------------------------------------------------------------------------
# HTML sections


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1280px; padding: 0 24px 48px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 1px solid #ddd; }
nav a { margin-right: 14px; } .muted { color: #666; } .note { color: #8a5a00; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
textarea { font-family: ui-monospace, monospace; font-size: 12px; width: 380px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px;
          margin-right: 5px; }
.family { display: grid; grid-template-columns: 1fr; gap: 8px; }
"""

_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("data-dir") !== "asc";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", asc ? "asc" : "desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-value");
        var y = b.cells[col].getAttribute("data-value");
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
function paretotuneCopy(id, button) {
  var box = document.getElementById(id);
  var done = function () {
    button.textContent = "copied";
    setTimeout(function () { button.textContent = "copy"; }, 1500);
  };
  var fallback = function () { box.select(); document.execCommand("copy"); done(); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(box.value).then(done, fallback);
  } else { fallback(); }
}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figure_html(fig: go.Figure, div_id: str) -> str:
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    notes = "".join(f'<p class="note">{_esc(n)}</p>' for n in _notes(fig))
    return body + notes


def _dataset_text(dataset: Any) -> str:
    """``{"name": "digits", "image_size": 16, ...}`` -> ``digits (16x16)``; strings as given."""
    if isinstance(dataset, Mapping):
        size = dataset.get("image_size")
        return f"{dataset.get('name', 'n/a')}" + (f" ({size}x{size})" if size else "")
    return "n/a" if dataset is None else str(dataset)


def _summary_html(results: Results) -> str:
    counts = Counter(str(r.get("status")) for r in results.rows)
    ref = pareto.default_reference(results.rows, results.objectives)
    fr = pareto.fronts(results.rows, results.objectives)
    hv = pareto.front_hypervolume(fr.overall, ref)
    exp = results.experiment
    objs = ", ".join(f"{o.name} ({o.direction})" for o in results.objectives)
    status = ", ".join(f"{counts.get(s, 0)} {s.lower()}" for s in _STATUSES)
    exp_yaml = yaml.safe_dump(exp, sort_keys=False, default_flow_style=None) if exp else "{}"
    return (
        f"<p><b>{len(results.rows)}</b> trials ({status}) over "
        f"{', '.join(results.families) or 'no families'}; dataset "
        f"<b>{_esc(_dataset_text(exp.get('dataset')))}</b>; objectives: {_esc(objs)}.</p>"
        f"<p>Overall front: <b>{len(fr.overall)}</b> trials; hypervolume <b>{hv:.4g}</b> "
        f"against the reference point {_esc(ref.describe())}.</p>"
        f"<details><summary>experiment</summary><pre>{_esc(exp_yaml)}</pre></details>"
    )


def _matched_cost_html(results: Results) -> str:
    acc, cost = results.accuracy_key, results.cost_key
    fr = pareto.fronts(results.rows, {acc: "max", cost: "min"})
    costs = [c for f in fr.by_family.values() for c in f.column(cost)]
    if not costs or min(costs) <= 0:
        return "<p class='muted'>No measured trials to compare.</p>"
    levels = pareto.cost_levels(min(costs), max(costs))
    m = pareto.matched_accuracy(fr.by_family, levels, accuracy_key=acc, cost_key=cost)
    fams = _family_sort(m.accuracy)
    head = "".join(f"<th>{_esc(f)}</th>" for f in fams)
    body = []
    for i, c in enumerate(m.costs):
        cells = []
        for f in fams:
            a, tid = m.accuracy[f][i], m.trial_ids[f][i]
            cells.append(
                f'<td class="num" data-value="{a if a is not None else ""}" '
                f'title="{_esc(tid or "")}">{_pct(a) if a is not None else "-"}</td>'
            )
        body.append(
            f'<tr><td data-value="{c}">&le; {_esc(_cost_text(cost, c))}</td>{"".join(cells)}</tr>'
        )
    # the headline: the cheapest level where the most families have a model
    best_i = max(
        range(len(m.costs)), key=lambda i: (sum(m.accuracy[f][i] is not None for f in fams), -i)
    )
    said = ", ".join(
        f"{f} {_pct(m.accuracy[f][best_i])}" for f in fams if m.accuracy[f][best_i] is not None
    )
    return (
        f"<p>Best {_esc(acc)} each family reaches within a {_esc(cost)} budget, read off its "
        f"front (a step function: the best front point with {_esc(cost)} &le; the budget). "
        f"For example, <b>at {_esc(_cost_text(cost, m.costs[best_i]))}: {_esc(said)}</b>.</p>"
        f'<table class="sortable" id="matched-cost-table"><thead><tr><th>{_esc(cost)} budget'
        f"</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _front_table_html(results: Results) -> str:
    acc = results.accuracy_key
    rows = []
    for i, (row, overall) in enumerate(_front_members(results)):
        cfg = _config(row)
        cfg_json = json.dumps(cfg, indent=1, default=str)
        cfg_yaml = yaml.safe_dump(json.loads(cfg_json), sort_keys=False)
        fam = str(row.get("family"))
        cells = [
            (row.get("trial_id"), _esc(row.get("trial_id")), ""),
            (fam, f'<span class="swatch" style="background:{_colour(fam)}"></span>{_esc(fam)}', ""),
            (int(overall), "yes" if overall else "", ""),
            (as_float(row.get(acc)), f"{as_float(row.get(acc)):.4f}", "num"),
            (as_float(row.get("flops")), _si(row.get("flops")), "num"),
            (as_float(row.get("params")), _si(row.get("params")), "num"),
            (
                as_float(row.get("latency_ms")),
                _cost_text("latency_ms", row.get("latency_ms")),
                "num",
            ),
            (row.get("epochs_run"), _esc(row.get("epochs_run")), "num"),
            (row.get("status"), _esc(row.get("status")), ""),
        ]
        tds = "".join(
            f'<td class="{cls}" data-value="{_esc(v)}">{text}</td>' for v, text, cls in cells
        )
        boxes = "".join(
            f'<details><summary>{kind}</summary><textarea readonly rows="8" id="cfg-{kind}-{i}">'
            f'{_esc(text)}</textarea><br><button type="button" '
            f"onclick=\"paretotuneCopy('cfg-{kind}-{i}', this)\">copy</button></details>"
            for kind, text in (("json", cfg_json), ("yaml", cfg_yaml))
        )
        rows.append(
            f'<tr data-trial="{_esc(row.get("trial_id"))}">{tds}<td data-value="">{boxes}</td></tr>'
        )
    heads = [
        "trial",
        "family",
        "overall front",
        acc,
        "FLOPs",
        "params",
        "latency",
        "epochs",
        "status",
        "config",
    ]
    head = "".join(f"<th>{_esc(h)}</th>" for h in heads)
    return (
        "<p>Every member of a family front (objectives: "
        f"{_esc(', '.join(o.name for o in results.objectives))}). Click a header to sort; "
        "open a config to copy it.</p>"
        f'<table class="sortable" id="front-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _reason(row: Mapping[str, Any]) -> str:
    text = str(row.get("failure_reason") or "").strip().splitlines()
    if text:
        return text[0][:200]
    if row.get("status") == "STOPPED":
        return f"early-stopped by the scheduler after {row.get('epochs_run')} epochs"
    return "(no reason recorded)"


def _status_html(results: Results) -> str:
    fams = results.families
    by = Counter((str(r.get("family")), str(r.get("status"))) for r in results.rows)
    statuses = list(_STATUSES) + sorted({s for _, s in by} - set(_STATUSES))
    head = "".join(f"<th>{_esc(s)}</th>" for s in statuses)
    body = "".join(
        f"<tr><td>{_esc(f)}</td>"
        + "".join(f'<td class="num">{by.get((f, s), 0)}</td>' for s in statuses)
        + f'<td class="num">{sum(by.get((f, s), 0) for s in statuses)}</td></tr>'
        for f in fams
    )
    totals = "".join(
        f'<td class="num"><b>{sum(by.get((f, s), 0) for f in fams)}</b></td>' for s in statuses
    )
    body += f'<tr><td><b>all</b></td>{totals}<td class="num"><b>{len(results.rows)}</b></td></tr>'
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results.rows:
        status = str(r.get("status"))
        if status in ("COMPLETE",) and pareto.is_eligible(r, results.objectives):
            continue
        if status == "COMPLETE":
            reason = "completed but an objective is missing or not finite"
        else:
            reason = _reason(r)
        reasons[(status, reason)].append(str(r.get("trial_id")))
    rrows = "".join(
        f'<tr><td>{_esc(s)}</td><td>{_esc(reason)}</td><td class="num">{len(ids)}</td>'
        f"<td>{_esc(', '.join(ids[:12]))}{' ...' if len(ids) > 12 else ''}</td></tr>"
        for (s, reason), ids in sorted(reasons.items())
    )
    return (
        "<p>Only COMPLETE trials (the full epoch budget) take part in the fronts. STOPPED "
        "trials (cut early by the scheduler, a partial budget), FAILED, INFEASIBLE (over the "
        "cost budget, never trained) and DUPLICATE (already trained) trials do not.</p>"
        f'<table id="status-counts"><thead><tr><th>family</th>{head}<th>total</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
        f'<table class="sortable" id="status-reasons"><thead><tr><th>status</th><th>reason</th>'
        f"<th>trials</th><th>trial ids</th></tr></thead><tbody>{rrows}</tbody></table>"
    )


_SECTIONS = (
    ("summary", "Summary"),
    ("front", "Pareto front"),
    ("matched-cost", "Accuracy at a matched cost"),
    ("front-table", "Front members"),
    ("hypervolume", "Hypervolume"),
    ("learning-curves", "Learning curves"),
    ("families", "Hyperparameters per family"),
    ("trial-status", "Failed, stopped and infeasible trials"),
)


def render_html(results: Results, figures: Mapping[str, go.Figure]) -> str:
    """The whole self-contained page: plotly.js inline once, then every section."""
    fam_parts = []
    for fam in results.families:
        parts = [
            _figure_html(figures[k], f"fig-{k.replace(':', '-')}")
            for k in (f"parcoords:{fam}", f"importance:{fam}")
            if k in figures
        ]
        fam_parts.append(
            f'<h3 id="family-{_esc(fam)}">{_esc(fam)}</h3>'
            f'<div class="family">{"".join(parts)}</div>'
        )
    bodies = {
        "summary": _summary_html(results),
        "front": (
            "<p>Each dot is a measured trial; the step lines are each family's front and the "
            "black line the overall front. Hover for the config; the menu at the top right "
            "switches the cost axis. Stars are the seed examples' presets at their estimated "
            "cost.</p>" + _figure_html(figures["front"], "fig-front")
        ),
        "matched-cost": _matched_cost_html(results),
        "front-table": _front_table_html(results),
        "hypervolume": _figure_html(figures["hypervolume"], "fig-hypervolume"),
        "learning-curves": _figure_html(figures["learning_curves"], "fig-learning_curves"),
        "families": "".join(fam_parts) or "<p class='muted'>No families.</p>",
        "trial-status": _status_html(results),
    }
    nav = "".join(f'<a href="#{sid}">{_esc(title)}</a>' for sid, title in _SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{_esc(title)}</h2>{bodies[sid]}</section>'
        for sid, title in _SECTIONS
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>paretotune report: {_esc(results.name)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>paretotune report: {_esc(results.name)}</h1>"
        f'<p class="muted">{_esc(results.directory)}</p><nav>{nav}</nav>{sections}'
        f"<script>{_JS}</script></body></html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Files


def _export_pngs(
    figures: Mapping[str, go.Figure], directory: Path
) -> tuple[dict[str, Path], str | None]:
    """Write the main figures as PNG through kaleido (one browser start for all)."""
    try:
        import kaleido  # noqa: F401 - a clear error when the extra is missing
        import plotly.io as pio
    except ImportError as exc:
        return {}, f"PNG export needs kaleido>=1.0 (pip install 'paretotune[png]'): {exc}"
    names = [n for n in MAIN_FIGURES if n in figures]
    paths = {n: directory / f"report-{n.replace('_', '-')}.png" for n in names}
    figs = []
    for n in names:
        fig = go.Figure(figures[n])
        fig.layout.updatemenus = ()  # a dropdown means nothing in a still image
        figs.append(fig)
    try:
        pio.write_images(
            figs,
            [paths[n] for n in names],
            width=1200,
            height=[int(f.layout.height or 500) for f in figs],
            scale=1,
        )
    except Exception as exc:  # no browser, a broken one, a kaleido error
        detail = " ".join(str(exc).split())[:200]
        return {}, (
            f"PNG export failed, no PNG written ({type(exc).__name__}: {detail}). kaleido needs "
            "Chrome or Chromium: install the system package (Debian/Ubuntu: apt-get install "
            "chromium) or run `kaleido_get_chrome`. report.html was written."
        )
    return paths, None


def write_report(
    results_dir: str | os.PathLike[str],
    *,
    png: bool = False,
    presets: Sequence[PresetPoint] | None = None,
) -> ReportFiles:
    """Write ``<results_dir>/report.html`` (and with ``png`` the main figures as PNGs).

    Returns a :class:`ReportFiles`, usable as the report.html path (``os.fspath``, ``str``).
    A failed PNG export never raises: it prints one message to stderr and sets
    ``png_error``.
    """
    from search import storage

    results = load_results(results_dir)
    figures = build_figures(results, presets=presets)
    if isinstance(results.directory, str):  # an object store: one PUT of the page
        uri = storage.join(results.directory, "report.html")
        storage.write_text(uri, render_html(results, figures))
        if not png:
            return ReportFiles(uri)
        why = "PNGs are written into local results folders only; report.html was written."
        print(f"paretotune report: {why}", file=sys.stderr)
        return ReportFiles(uri, {}, why)
    out = results.directory / "report.html"
    out.write_text(render_html(results, figures), encoding="utf-8")
    if not png:
        return ReportFiles(out)
    pngs, error = _export_pngs(figures, results.directory)
    if error:
        print(f"paretotune report: {error}", file=sys.stderr)
    return ReportFiles(out, pngs, error)

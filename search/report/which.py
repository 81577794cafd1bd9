"""The "Which <family>" sections: the recommendation table, then per named dimension its
figure and the best accuracy per value at the matched cost levels.

Each function writes HTML from ``ReportData.which`` (:mod:`.dimensions`) and the figures
already drawn (``figure(key)``: a figure's HTML, empty when it was not drawn); nothing here
computes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .data import ReportData
from .dimensions import (
    MEASURED_CONFIGS,
    MEASURED_SEEDS,
    AnytimeOrigin,
    Dimension,
    FamilyDimensions,
    LevelVerdict,
    Recommendation,
    WhichFamily,
)
from .dimensions import RecommendationTable as RecTable
from .figures import DIMENSION_FIGURES, dimension_figure_key
from .format import colour, cost_text, count_text, esc, gap_text, pct, value_label
from .inputs import config, hp_value
from .tables import config_boxes

__all__ = ["which_html", "which_sections"]


def which_sections(data: ReportData) -> tuple[tuple[str, str], ...]:
    """The "Which <family>" sections' ids and headings, in report order (Perceiver first)."""
    return tuple((f"which-{fam}", f"Which {fam}") for fam in data.which)


def cli_text(family: str, row: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """``--set 'space.<family>.<name>=[v]'`` for each named dimension the row records."""
    values = {n: hp_value(row, n) for n in names}
    return " ".join(
        f"--set 'space.{family}.{n}={json.dumps([v])}'" for n, v in values.items() if v is not None
    )


def _anytime_note(origin: AnytimeOrigin | None) -> str:
    if origin is None:
        return ""
    of = "" if origin.of is None else f" of {origin.of}"
    return (
        f'<br><span class="muted">anytime point: {origin.iterations}{of} iterations of trial '
        f"{esc(origin.parent)}</span>"
    )


def _swatch(family: str) -> str:
    return f'<span class="swatch" style="background:{colour(family)}"></span>{esc(family)}'


def _rec_row(which: WhichFamily, table: RecTable, rec: Recommendation, i: int) -> str:
    """One level: the family's best config, its accuracies, the best baseline, the gap."""
    fam, row = which.family, rec.row
    dims = ", ".join(value_label(n, hp_value(row, n)) for n in which.names)
    base = "-"
    if rec.baseline_family is not None and rec.baseline_row is not None:
        base = f"{_swatch(rec.baseline_family)} {esc(rec.baseline_row.get('trial_id'))}"
    uid = f"which-{fam}-{table.cost_key}-{i}"
    cli = {"cli": cli_text(fam, row, which.names)}
    cells = [
        (rec.level, f"&le; {esc(cost_text(table.cost_key, rec.level))}", ""),
        (rec.trial_id, f"<b>{esc(rec.trial_id)}</b> {esc(dims)}"
         f"{_anytime_note(which.anytime.get(rec.trial_id))}", ""),
        (rec.accuracy, pct(rec.accuracy), "num"),
        (rec.test_accuracy, pct(rec.test_accuracy), "num"),
        (rec.baseline_family or "", base, ""),
        (rec.baseline_accuracy, pct(rec.baseline_accuracy), "num"),
        (rec.gap, gap_text(rec.gap) + (" (not separated)" if rec.separated is False else ""),
         "num"),
    ]  # fmt: skip
    tds = "".join(
        f'<td class="{cls}" data-value="{esc("" if v is None else v)}">{text}</td>'
        for v, text, cls in cells
    )
    boxes = config_boxes(config(row), uid, cli)
    return f'<tr data-trial="{esc(rec.trial_id)}">{tds}<td data-value="">{boxes}</td></tr>'


def _rec_table(which: WhichFamily, table: RecTable, shown: bool) -> str:
    """One cost axis's table (hidden unless ``shown``; the select switches)."""
    acc, fam = table.accuracy_key, which.family
    heads = (f"{table.title} budget", f"best {fam}", acc, "test_accuracy", "best baseline",
             f"baseline {acc}", "gap", "config")  # fmt: skip
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    body = "".join(_rec_row(which, table, r, i) for i, r in enumerate(table.rows))
    return (
        f'<table class="sortable recommend" id="recommend-{esc(fam)}-{esc(table.cost_key)}" '
        f'data-group="recommend-{esc(fam)}" data-axis="{esc(table.cost_key)}"'
        f"{'' if shown else ' hidden'}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _recommend_html(which: WhichFamily) -> str:
    """The recommendation tables with the select that switches the cost axis."""
    tables = which.recommendations
    if not tables:
        return "<p class='muted'>No front to recommend from.</p>"
    fam = which.family
    options = "".join(f'<option value="{esc(t.cost_key)}">{esc(t.title)}</option>' for t in tables)
    baselines = ", ".join(tables[0].baselines) or "none"
    return (
        f"<p>For each point of the {esc(fam)} front (its cost is a budget): the best {esc(fam)} "
        f"configuration within that budget, its {esc(tables[0].accuracy_key)} and test accuracy, "
        f"and the best other family (baselines: {esc(baselines)}) within the same budget; the gap "
        "is in accuracy points, <b>not separated</b> where the two 95 % intervals overlap. Open "
        "a config to copy it (JSON, YAML, or the named dimensions as "
        "<code>--set</code> overrides for <code>paretotune run</code>).</p>"
        f'<label>cost axis <select data-group="recommend-{esc(fam)}" '
        f'onchange="paretotuneAxis(this)">{options}</select></label>'
        + "".join(_rec_table(which, t, i == 0) for i, t in enumerate(tables))
    )


def _verdict_text(dim: Dimension, verdict: LevelVerdict) -> str:
    """A level's verdict, as the table's last row says it."""
    if verdict.kind == "separated":
        return f"{value_label(dim.name, verdict.leader)} leads"
    return {"alone": "-", "not measured": "not measured", "not separated": "not separated"}[
        verdict.kind
    ]


def _levels_table(fd: FamilyDimensions, dim: Dimension) -> str:
    """Best accuracy per value at each matched level, each with its interval; a value is in
    bold only where it leads clear of every other value's interval (the verdict row)."""
    heads = "".join(f"<th>&le; {esc(cost_text(fd.cost_key, c))}</th>" for c in fd.levels)
    rows = []
    for v in dim.values:
        cells = []
        for j, (a, t) in enumerate(zip(v.best, v.best_ids)):
            verdict = dim.verdicts[j] if j < len(dim.verdicts) else LevelVerdict("alone")
            lead = verdict.kind == "separated" and verdict.leader == v.value
            span = v.best_intervals[j] if j < len(v.best_intervals) else None
            text = "-" if a is None else f"<b>{pct(a)}</b>" if lead else pct(a)
            if a is not None and span is not None:
                text += f' <span class="muted">[{pct(span[0])}, {pct(span[1])}]</span>'
            cells.append(
                f'<td class="num" data-value="{"" if a is None else a}" title="{esc(t or "")}">'
                f"{text}</td>"
            )
        seeded = "" if v.measured else " (not measured)"
        rows.append(
            f"<tr><td>{esc(value_label(dim.name, v.value))}</td><td data-value="
            f'"{v.n_trials + v.n_anytime}">{esc(count_text(v.n_trials, v.n_anytime))}'
            f"; {v.n_seeded} with &ge; {MEASURED_SEEDS} seeds{seeded}</td>{''.join(cells)}</tr>"
        )
    verdicts = "".join(f"<td>{esc(_verdict_text(dim, vd))}</td>" for vd in dim.verdicts)
    return (
        f'<table class="sortable" id="levels-{esc(fd.family)}-{esc(dim.name)}"><thead><tr>'
        f"<th>{esc(dim.name)}</th><th>trials</th>{heads}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody>"
        f'<tfoot><tr class="verdict"><td>verdict</td><td></td>{verdicts}</tr></tfoot></table>'
    )


def _dimensions_html(which: WhichFamily, figure: Callable[[str], str]) -> str:
    """Per named dimension: its figures, then its table of levels."""
    fd = which.dimensions
    if fd is None:
        return ""
    parts = [
        f"<p>Per named dimension: the best {esc(fd.accuracy_key)} each value reaches within a "
        f"{esc(fd.cost_title)} budget (the costs of the {esc(which.family)} front's points and "
        "its dearest trial; hover a cell for the trial), with its 95 % interval (the seeds' t "
        "interval, else the evaluation set's Wilson interval). Anytime points count as points, "
        "apart from trained trials. A value leads at a budget (bold) only when its interval is "
        "clear of every other value's there; overlapping intervals are <b>not separated</b>, "
        f"and a value with fewer than {MEASURED_CONFIGS} configurations of {MEASURED_SEEDS} "
        "seeds or more is <b>not measured</b>: one seed's draw names no winner.</p>"
    ]
    for dim in fd.dimensions:
        parts += [
            figure(dimension_figure_key(k, which.family, dim.name)) for k in DIMENSION_FIGURES
        ]
        parts.append(_levels_table(fd, dim))
    if fd.unrecorded:
        parts.append(
            f'<p class="note">not recorded by any trial: {esc(", ".join(fd.unrecorded))}</p>'
        )
    return "".join(parts)


def which_html(data: ReportData, family: str, figure: Callable[[str], str]) -> str:
    """The "Which <family>" section's body."""
    which = data.which[family]
    return (
        f"<h3>Best {esc(family)} per budget</h3>{_recommend_html(which)}"
        f"<h3>{esc(family)} by named dimension</h3>{_dimensions_html(which, figure)}"
    )

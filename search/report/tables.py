"""The report's HTML text and tables: summary, matched cost, published results, front members,
trial status.

Each function writes one section's HTML from a :class:`~search.report.data.ReportData`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import yaml

from search.data.published import PublishedResult
from search.pareto import as_float, row_interval

from .data import (
    STATUS_COLUMNS,
    FrontMember,
    MatchedCost,
    PublishedData,
    ReportData,
    StatusTable,
    SweepTest,
)
from .format import colour, cost_text, dataset_text, esc, pct, si
from .inputs import config

__all__ = [
    "config_boxes",
    "front_table_html",
    "matched_cost_html",
    "published_html",
    "status_html",
    "summary_html",
]

#: A sortable table's cell: the value it sorts by, its HTML, its class.
Cell = tuple[Any, str, str]


def _sortable_cells(cells: list[Cell]) -> str:
    """``<td>`` cells, each with the ``data-value`` a sortable table sorts by."""
    return "".join(f'<td class="{cls}" data-value="{esc(v)}">{text}</td>' for v, text, cls in cells)


def summary_html(data: ReportData) -> str:
    """Trial counts, families, dataset, objectives, the overall front and its hypervolume."""
    results, hv = data.results, data.hypervolume
    exp = results.experiment
    objs = ", ".join(f"{o.name} ({o.direction})" for o in results.objectives)
    status = ", ".join(f"{data.status.total(s)} {s.lower()}" for s in STATUS_COLUMNS)
    exp_yaml = yaml.safe_dump(exp, sort_keys=False, default_flow_style=None) if exp else "{}"
    return (
        f"<p><b>{len(results.rows)}</b> trials ({status}) over "
        f"{', '.join(results.families) or 'no families'}; dataset "
        f"<b>{esc(dataset_text(exp.get('dataset')))}</b>; objectives: {esc(objs)}.</p>"
        f"<p>Overall front: <b>{len(data.fronts.overall)}</b> trials; hypervolume "
        f"<b>{hv.final:.4g}</b> against the reference point {esc(hv.reference.describe())}.</p>"
        f"<details><summary>experiment</summary><pre>{esc(exp_yaml)}</pre></details>"
    )


def _matched_rows(mc: MatchedCost) -> str:
    """The table's rows: one per budget, a cell per family (title: the trial)."""
    m, cost = mc.matched, mc.matched.cost_key
    body = []
    for i, c in enumerate(m.costs):
        cells = []
        for f in mc.families:
            a, tid = m.accuracy[f][i], m.trial_ids[f][i]
            cells.append(
                f'<td class="num" data-value="{a if a is not None else ""}" '
                f'title="{esc(tid or "")}">{pct(a) if a is not None else "-"}</td>'
            )
        body.append(
            f'<tr><td data-value="{c}">&le; {esc(cost_text(cost, c))}</td>{"".join(cells)}</tr>'
        )
    return "".join(body)


def matched_cost_html(data: ReportData) -> str:
    """Best accuracy per family within each cost budget, and the headline budget."""
    mc = data.matched_cost
    if mc is None:
        return "<p class='muted'>No measured trials to compare.</p>"
    m, fams, best = mc.matched, mc.families, mc.headline
    acc, cost = m.accuracy_key, m.cost_key
    head = "".join(f"<th>{esc(f)}</th>" for f in fams)
    said = ", ".join(
        f"{f} {pct(m.accuracy[f][best])}" for f in fams if m.accuracy[f][best] is not None
    )
    if len(mc.tied) > 1:
        ranked = f" ({', '.join(mc.tied)}: not separated, their 95 % intervals overlap)"
    elif mc.tied and mc.leader_seeds < 2:
        ranked = (
            f" ({mc.tied[0]} is clear of the others' evaluation-set intervals, but from one "
            "seed: no winner is named until replicates or a confirmation measure it)"
        )
    elif mc.tied:
        ranked = f" ({mc.tied[0]} leads, clear of the others' 95 % intervals)"
    else:
        ranked = ""
    return (
        f"<p>Best {esc(acc)} each family reaches within a {esc(cost)} budget, read off its "
        f"front (a step function: the best front point with {esc(cost)} &le; the budget). "
        f"For example, <b>at {esc(cost_text(cost, m.costs[best]))}: {esc(said)}</b>"
        f"{esc(ranked)}.</p>"
        f'<table class="sortable" id="matched-cost-table"><thead><tr><th>{esc(cost)} budget'
        f"</th>{head}</tr></thead><tbody>{_matched_rows(mc)}</tbody></table>"
    )


def _test_cell(row: Mapping[str, Any]) -> str:
    """A trial's test accuracy and its id."""
    return (
        f'<td class="num">{pct(row.get("test_accuracy"))} '
        f'<span class="muted">({esc(row.get("trial_id"))})</span></td>'
    )


def _sweep_table(pub: PublishedData, acc: str) -> str:
    """This sweep's test accuracy overall and per family: the best, and the best-``acc``
    trial's."""
    if not pub.sweep:
        return "<p class='muted'>No COMPLETE trial of this sweep records a test accuracy.</p>"

    def row(t: SweepTest) -> str:
        name = "all families" if t.family is None else t.family
        return (
            f'<tr><td>{esc(name)}</td><td class="num">{t.n_trials}</td>'
            f"{_test_cell(t.best)}{_test_cell(t.selected)}</tr>"
        )

    heads = ("family", "COMPLETE trials with a test accuracy", "best test accuracy",
             f"test accuracy of the best-{acc} trial")  # fmt: skip
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return (
        f'<table id="published-sweep"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(row(t) for t in pub.sweep)}</tbody></table>"
    )


def _published_cells(r: PublishedResult) -> list[Cell]:
    """A published result's cells: model, params ("-" when not given), test accuracy,
    preprocessing, submitter."""
    no_count = r.params is None
    return [
        (r.model, esc(r.model), ""),
        ("" if no_count else r.params, "-" if no_count else si(r.params), "num"),
        (r.test_accuracy, pct(r.test_accuracy), "num"),
        (r.preprocessing, esc(r.preprocessing), ""),
        (r.submitter, esc(r.submitter), ""),
    ]


def published_html(data: ReportData) -> str:
    """The dataset's published results, with their source, beside this sweep's test accuracy."""
    pub = data.published
    if pub is None:
        return "<p class='muted'>No published results table for this dataset.</p>"
    acc = data.accuracy_key
    heads = ("model", "params", "test accuracy", "preprocessing", "submitter")
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    dataset = dataset_text(data.results.experiment.get("dataset"))
    rows = "".join(f"<tr>{_sortable_cells(_published_cells(r))}</tr>" for r in pub.rows)
    return (
        f"<p>The results published for <b>{esc(pub.title)}</b>, as submitted (not rerun "
        f"here), each with its submitter's own training and preprocessing: <b>test</b> "
        f"accuracy on the dataset's official test set. Source: {esc(pub.source)}</p>"
        f"<p>Rows that give a parameter count are drawn on the Pareto front's parameters view "
        f"as grey diamonds; their height is test accuracy, the trials' is {esc(acc)}.</p>"
        f"<p>This sweep ({esc(dataset)}) on the same test images: the best test accuracy is "
        f"picked on the test set itself (an upper bound); the best-{esc(acc)} trial's test "
        f"accuracy is the fair one to compare.</p>"
        f"{_sweep_table(pub, acc)}"
        f'<table class="sortable" id="published-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _member_cells(member: FrontMember, acc: str) -> str:
    """A member's cells, each with the ``data-value`` the table sorts by."""
    row, fam = member.row, member.family
    cells: list[Cell] = [
        (row.get("trial_id"), esc(row.get("trial_id")), ""),
        (fam, f'<span class="swatch" style="background:{colour(fam)}"></span>{esc(fam)}', ""),
        (int(member.overall), "yes" if member.overall else "", ""),
        (as_float(row.get(acc)), f"{as_float(row.get(acc)):.4f}", "num"),
        ((row_interval(row, acc) or (None,))[0], _interval(row, acc), "num"),
        *(_probability_cell(row.get(k)) for k in ("front_probability", "family_front_probability")),
        (as_float(row.get("flops")), si(row.get("flops")), "num"),
        (as_float(row.get("params")), si(row.get("params")), "num"),
        (as_float(row.get("latency_ms")), cost_text("latency_ms", row.get("latency_ms")), "num"),
        (row.get("epochs_run"), esc(row.get("epochs_run")), "num"),
        (row.get("status"), esc(row.get("status")), ""),
    ]
    return _sortable_cells(cells)


def _seed_note(data: ReportData) -> str:
    """ ", which counts ... too sure for vit, mixer" when some family has no seed data."""
    unseeded = data.results.unseeded_families
    if not unseeded:
        return ""
    return (
        f" (<b>no seed replicates yet for {esc(', '.join(unseeded))}</b>: their probabilities "
        "count the evaluation set's noise only, and are too sure)"
    )


def _interval(row: Mapping[str, Any], acc: str) -> str:
    """``[0.8561, 0.8703]`` (:func:`search.pareto.row_interval`), or "-" without one."""
    span = row_interval(row, acc)
    return "-" if span is None else f"[{span[0]:.4f}, {span[1]:.4f}]"


def _probability_cell(value: Any) -> Cell:
    p = as_float(value)
    return (p, f"{p:.2f}" if math.isfinite(p) else "-", "num")


def config_boxes(cfg: Mapping[str, Any], uid: str, extra: Mapping[str, str] | None = None) -> str:
    """``cfg`` as JSON and as YAML (and each ``extra`` kind -> text), each in a box with a copy
    button; the boxes' ids are ``cfg-<kind>-<uid>``."""
    cfg_json = json.dumps(dict(cfg), indent=1, default=str)
    cfg_yaml = yaml.safe_dump(json.loads(cfg_json), sort_keys=False)
    boxes = {"json": cfg_json, "yaml": cfg_yaml, **(extra or {})}
    return "".join(
        f'<details><summary>{esc(kind)}</summary><textarea readonly rows="8" '
        f'id="cfg-{esc(kind)}-{esc(uid)}">{esc(text)}</textarea><br><button type="button" '
        f"onclick=\"paretotuneCopy('cfg-{esc(kind)}-{esc(uid)}', this)\">copy</button></details>"
        for kind, text in boxes.items()
    )


def front_table_html(data: ReportData) -> str:
    """Every family-front member, sortable, with its config ready to copy."""
    acc = data.accuracy_key
    rows = "".join(
        f'<tr data-trial="{esc(m.trial_id)}">{_member_cells(m, acc)}'
        f'<td data-value="">{config_boxes(config(m.row), str(i))}</td></tr>'
        for i, m in enumerate(data.members)
    )
    heads = ("trial", "family", "overall front", acc, "95% interval", "P(front)",
             "P(family front)", "FLOPs", "params", "latency", "epochs", "status",
             "config")  # fmt: skip
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return (
        "<p>Every member of a family front (objectives: "
        f"{esc(', '.join(o.name for o in data.results.objectives))}). Click a header to sort; "
        "open a config to copy it. The interval is the seeds' t interval, or with one seed the "
        "evaluation set's Wilson interval (its sampling error only); "
        "P(front) and P(family front) are the probabilities that the configuration is "
        "non-dominated, overall and within its family, when accuracies are redrawn from their "
        f"noise{_seed_note(data)}.</p>"
        f'<table class="sortable" id="front-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _status_counts(st: StatusTable) -> str:
    """Trials per family and status, a total per family, and the totals row."""
    body = "".join(
        f"<tr><td>{esc(f)}</td>"
        + "".join(f'<td class="num">{st.count(f, s)}</td>' for s in st.statuses)
        + f'<td class="num">{sum(st.count(f, s) for s in st.statuses)}</td></tr>'
        for f in st.families
    )
    totals = "".join(f'<td class="num"><b>{st.total(s)}</b></td>' for s in st.statuses)
    return body + f'<tr><td><b>all</b></td>{totals}<td class="num"><b>{st.n_trials}</b></td></tr>'


def status_html(data: ReportData) -> str:
    """Which trials are off the fronts: counts per family and status, then every reason."""
    st = data.status
    head = "".join(f"<th>{esc(s)}</th>" for s in st.statuses)
    rrows = "".join(
        f'<tr><td>{esc(r.status)}</td><td>{esc(r.reason)}</td><td class="num">'
        f"{len(r.trial_ids)}</td><td>{esc(', '.join(r.trial_ids[:12]))}"
        f"{' ...' if len(r.trial_ids) > 12 else ''}</td></tr>"
        for r in st.reasons
    )
    return (
        "<p>Only COMPLETE trials (the full epoch budget) take part in the fronts. STOPPED "
        "trials (cut early by the scheduler, a partial budget), FAILED, INFEASIBLE (over the "
        "cost budget, never trained) and DUPLICATE (already trained) trials do not.</p>"
        f'<table id="status-counts"><thead><tr><th>family</th>{head}<th>total</th></tr></thead>'
        f"<tbody>{_status_counts(st)}</tbody></table>"
        f'<table class="sortable" id="status-reasons"><thead><tr><th>status</th><th>reason</th>'
        f"<th>trials</th><th>trial ids</th></tr></thead><tbody>{rrows}</tbody></table>"
    )

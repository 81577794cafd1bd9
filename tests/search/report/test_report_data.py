"""search/report/data.py: everything the report shows is computed once, into plain data, and
the figures and the page only draw it."""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter
from typing import Any

import plotly.graph_objects as go
import pytest
from _report_helpers import FAMILIES
from plotly.basedatatypes import BasePlotlyType

from search import pareto, report
from search.report import data as report_data
from search.report import figures as report_figures
from search.report import importance as report_importance
from search.report.page import render_page
from search.vocabulary import TrialStatus


def test_fronts_are_computed_once(results: report.Results, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[pareto.Objective, ...]] = []
    original = pareto.fronts

    def counting(rows: Any, objectives: Any) -> pareto.Fronts:
        calls.append(pareto.as_objectives(objectives))
        return original(rows, objectives)

    monkeypatch.setattr(pareto, "fronts", counting)
    data = report.compute_report_data(results, [])
    assert len(calls) == len(set(calls)), "a front was computed twice"
    acc = pareto.Objective("val_accuracy", "max")
    assert set(calls) == {(acc, pareto.Objective(k, "min")) for k, _ in report.COST_AXES}
    # the experiment's objectives are (val_accuracy, flops): the FLOPs view shares its fronts
    assert data.front.views[0].fronts is data.fronts


def test_fronts_equal_pareto_fronts(data: report.ReportData, results: report.Results) -> None:
    assert data.fronts == pareto.fronts(results.rows, results.objectives)
    assert [v.cost_key for v in data.front.views] == [k for k, _ in report.COST_AXES]
    for view in data.front.views:
        expected = pareto.fronts(results.rows, {"val_accuracy": "max", view.cost_key: "min"})
        assert view.fronts == expected
        assert view.families == FAMILIES
        for fam in FAMILIES:
            assert view.points(fam) == [r for r in expected.eligible if r["family"] == fam]
        over_budget = {r["trial_id"] for r in results.rows if r["status"] == "INFEASIBLE"}
        drawn = {r["trial_id"] for r in view.infeasible}
        # never built: only their FLOPs and parameters are known
        assert drawn == (set() if view.cost_key == "latency_ms" else over_budget)
        assert view.presets == ()


def test_hypervolume_data(data: report.ReportData, results: report.Results) -> None:
    rows, objs = results.rows, results.objectives
    ref = pareto.default_reference(rows, objs)
    hv = data.hypervolume
    assert hv.reference == ref
    assert hv.overall == pareto.hypervolume_history(rows, objs, ref)
    assert hv.final == pareto.front_hypervolume(data.fronts.overall, ref)
    assert list(hv.by_family) == list(FAMILIES)
    for fam, hist in hv.by_family.items():
        assert hist == pareto.hypervolume_history(rows, objs, ref, family=fam)


def test_matched_cost_data(data: report.ReportData) -> None:
    mc = data.matched_cost
    assert mc is not None
    by_family = data.front.views[0].fronts.by_family
    costs = [c for f in by_family.values() for c in f.column("flops")]
    levels = pareto.cost_levels(min(costs), max(costs))
    assert mc.matched == pareto.matched_accuracy(by_family, levels)
    assert mc.families == FAMILIES
    # the headline: the cheapest level at which the most families have a model
    accuracy = mc.matched.accuracy
    have = [sum(accuracy[f][i] is not None for f in FAMILIES) for i in range(len(levels))]
    assert mc.headline == have.index(max(have))


def test_members_and_learning_curves(data: report.ReportData) -> None:
    expected = [p.trial_id for f in FAMILIES for p in data.fronts.by_family[f].points]
    assert [m.trial_id for m in data.members] == expected
    assert [m.overall for m in data.members] == [
        t in data.fronts.overall.trial_ids for t in expected
    ]
    curves = data.learning_curves
    assert [c.trial_id for c in curves.curves] == expected and curves.missing == ()
    for member, curve in zip(data.members, curves.curves):
        history = member.row["history"]
        assert curve.epochs == tuple(h["epoch"] for h in history)
        assert curve.accuracy == tuple(h["val_accuracy"] for h in history)


def test_parcoords_data(data: report.ReportData, results: report.Results) -> None:
    eligible = pareto.eligible_rows(results.rows, results.objectives)
    for fam in FAMILIES:
        pc = data.parcoords[fam]
        rows = [r for r in eligible if r["family"] == fam]
        assert pc.trial_ids == tuple(r["trial_id"] for r in rows)
        assert pc.accuracy == tuple(r["val_accuracy"] for r in rows)
        axes = {a.label: a for a in pc.axes}
        assert axes["log10(lr)"].tickvals is None
        assert axes["dropout"].values == tuple(r["hp.dropout"] for r in rows)


def test_status_table(data: report.ReportData, results: report.Results) -> None:
    st = data.status
    assert st.statuses == ("COMPLETE", "STOPPED", "FAILED", "INFEASIBLE", "DUPLICATE")
    assert all(isinstance(s, TrialStatus) for s in st.statuses)
    assert st.counts == dict(Counter((r["family"], r["status"]) for r in results.rows))
    assert st.total("COMPLETE") == 13 and st.n_trials == len(results.rows) == 22
    listed = sorted(i for r in st.reasons for i in r.trial_ids)
    eligible = {r["trial_id"] for r in pareto.eligible_rows(results.rows, results.objectives)}
    assert listed == sorted(r["trial_id"] for r in results.rows if r["trial_id"] not in eligible)


def test_importance_data(data: report.ReportData) -> None:
    for fam in FAMILIES:
        imp = data.importance[fam]
        assert imp.unavailable is None and imp.source == "trials.json"
        assert list(imp.by_objective) == ["val_accuracy", "flops"]
        assert set(imp.params) == {p for v in imp.by_objective.values() for p in v}


def _plotly_objects(value: Any) -> list[Any]:
    """Every Plotly object inside ``value`` (dataclasses, mappings, sequences)."""
    if isinstance(value, BasePlotlyType):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
        return [o for v in fields for o in _plotly_objects(v)]
    if isinstance(value, dict):
        return [o for v in value.values() for o in _plotly_objects(v)]
    if isinstance(value, (list, tuple)):
        return [o for v in value for o in _plotly_objects(v)]
    return []


def test_report_data_is_plain_data(data: report.ReportData) -> None:
    assert dataclasses.is_dataclass(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.families = ()  # type: ignore[misc]
    assert _plotly_objects(data) == []


def test_each_figure_takes_only_report_data() -> None:
    for draw in report_figures.FIGURES.values():
        params = list(inspect.signature(draw).parameters.values())
        assert [p.annotation for p in params] == ["ReportData"], draw.__name__
    for draw in report_figures.FAMILY_FIGURES.values():
        params = list(inspect.signature(draw).parameters.values())
        assert [p.annotation for p in params] == ["ReportData", "str"], draw.__name__


def test_drawing_computes_nothing(
    data: report.ReportData, figures: dict[str, go.Figure], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every computation of search.pareto and the importances made to fail, the figures
    and the page are drawn from the ReportData alone, the same as before."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("drawing must not compute")

    computing = (
        "fronts",
        "pareto_front",
        "non_dominated_mask",
        "eligible_rows",
        "is_eligible",
        "hypervolume",
        "hypervolume_history",
        "default_reference",
        "front_hypervolume",
        "matched_accuracy",
        "accuracy_at_cost",
        "cost_levels",
    )
    for name in computing:
        monkeypatch.setattr(pareto, name, refuse)
    monkeypatch.setattr(report_importance, "family_importance", refuse)
    monkeypatch.setattr(report_data, "compute_report_data", refuse)
    drawn = report.draw_figures(data)
    assert {k: f.to_json() for k, f in drawn.items()} == {
        k: f.to_json() for k, f in figures.items()
    }
    assert 'id="front-table"' in render_page(data, drawn)


def test_a_new_family_figure_is_one_draw_function(
    data: report.ReportData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registering a draw function is all a new per-family figure needs to be on the page."""

    def sizes_figure(data: report.ReportData, family: str) -> go.Figure:
        return go.Figure(go.Bar(x=[family], y=[len(data.parcoords[family].trial_ids)]))

    monkeypatch.setitem(report_figures.FAMILY_FIGURES, "sizes", sizes_figure)
    drawn = report.draw_figures(data)
    page = render_page(data, drawn)
    for fam in FAMILIES:
        assert f"sizes:{fam}" in drawn
        start = page.index(f'id="family-{fam}"')
        ends = [i for i in (page.find("<h3 ", start), page.find("</section>", start)) if i > 0]
        assert f'id="fig-sizes-{fam}"' in page[start : min(ends)]

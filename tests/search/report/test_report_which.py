"""The "Which <family>" figures and section: drawn from ``ReportData.which`` only, the traces
equal the data, an anytime point's hover names its parent, the tables on the page."""

from __future__ import annotations

import html as html_mod
import inspect
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from _report_helpers import chromium
from _which_rows import DIMENSIONS, PERCEIVER, hand_results

from search import pareto, report
from search.report import data as report_data
from search.report import figures as report_figures
from search.report.page import render_page, static_text


@pytest.fixture(scope="module")
def hand() -> report.ReportData:
    return report.compute_report_data(hand_results(), [], dimensions=DIMENSIONS)


@pytest.fixture(scope="module")
def hand_figures(hand: report.ReportData) -> dict[str, go.Figure]:
    return report.draw_figures(hand)


@pytest.fixture(scope="module")
def hand_page(hand: report.ReportData, hand_figures: dict[str, go.Figure]) -> str:
    return render_page(hand, hand_figures)


def kinds(fig: go.Figure, kind: str) -> list[Any]:
    return [t for t in fig.data if t.meta["kind"] == kind]


def test_one_figure_per_named_dimension(hand_figures: dict[str, go.Figure]) -> None:
    keys = [k for k in hand_figures if k.startswith("dimension:")]
    assert keys == [f"dimension:perceiver:{n}" for n in PERCEIVER] + [
        f"dimension:vit:{n}" for n in DIMENSIONS["vit"]
    ]
    for draw in report_figures.DIMENSION_FIGURES.values():
        params = list(inspect.signature(draw).parameters.values())
        assert [p.annotation for p in params] == ["ReportData", "str", "str"], draw.__name__


def test_dimension_traces_equal_the_data(
    hand: report.ReportData, hand_figures: dict[str, go.Figure]
) -> None:
    fd = hand.which["perceiver"].dimensions
    assert fd is not None
    for dim in fd.dimensions:
        fig = hand_figures[f"dimension:perceiver:{dim.name}"]
        points, stairs = kinds(fig, "dimension_points"), kinds(fig, "dimension_front")
        assert [t.meta["value"] for t in points] == [v.value for v in dim.values]
        for v, p, s in zip(dim.values, points, stairs):
            assert tuple(p.customdata) == v.trial_ids
            assert list(zip(p.y, p.x)) == [(r["val_accuracy"], r["flops"]) for r in v.rows]
            n = s.meta["points"]
            assert n == len(v.front) and tuple(s.customdata[:n]) == v.front.trial_ids
            assert list(zip(s.y[:n], s.x[:n])) == list(v.front.values)
            assert s.line.shape == "hv" and p.legendgroup == s.legendgroup
            # held level up to the family's dearest point
            assert s.x[-1] == fd.dearest and s.y[-1] == v.front.values[-1][0]
        (front,) = kinds(fig, "family_front")
        assert tuple(front.customdata) == fd.front.trial_ids == ("p1", "p2@k1", "p2")
        assert list(front.x) == [10.0, 20.0, 40.0]


def test_legend_counts_trials_and_anytime_points(hand_figures: dict[str, go.Figure]) -> None:
    fig = hand_figures["dimension:perceiver:num_latents"]
    names = [t.name for t in kinds(fig, "dimension_points")]
    assert names == ["N=16 (1 trial)", "N=32 (2 trials, +1 anytime)"]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"


def test_anytime_hover_names_its_parent(hand_figures: dict[str, go.Figure]) -> None:
    fig = hand_figures["dimension:perceiver:num_iterations"]
    (one,) = [t for t in kinds(fig, "dimension_points") if t.meta["value"] == 1]
    hover = dict(zip(one.customdata, one.text))
    assert "anytime point: from trial p2, 1 of 2 iterations" in hover["p2@k1"]
    assert "anytime" not in hover["p1"] and "anytime" not in hover["p3"]
    assert list(one.marker.symbol) == ["circle", "diamond", "circle"]
    (front,) = kinds(fig, "family_front")
    assert "from trial p2, 1 of 2" in dict(zip(front.customdata, front.text))["p2@k1"]


def test_drawing_the_which_sections_computes_nothing(
    hand: report.ReportData,
    hand_figures: dict[str, go.Figure],
    hand_page: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("drawing must not compute")

    for name in (
        "fronts",
        "pareto_front",
        "non_dominated_mask",
        "eligible_rows",
        "is_eligible",
        "accuracy_at_cost",
        "matched_accuracy",
        "cost_levels",
    ):
        monkeypatch.setattr(pareto, name, refuse)  # fmt: skip
    monkeypatch.setattr(report_data, "which_families", refuse)
    monkeypatch.setattr(report_data, "compute_report_data", refuse)
    drawn = report.draw_figures(hand)
    assert {k: f.to_json() for k, f in drawn.items()} == {
        k: f.to_json() for k, f in hand_figures.items()
    }
    assert render_page(hand, drawn) == hand_page


def section(page: str, sid: str) -> str:
    body = page[page.index(f'<section id="{sid}">') :]
    return body[: body.index("</section>")]


def test_which_sections_on_the_page(hand_page: str) -> None:
    ids = re.findall(r'<section id="([^"]+)">', hand_page)
    assert ids[ids.index("matched-cost") + 1 : ids.index("front-table")] == [
        "which-perceiver",
        "which-vit",
    ]
    assert '<a href="#which-perceiver">Which perceiver</a>' in hand_page
    body = section(hand_page, "which-perceiver")
    for name in PERCEIVER:
        assert f'id="fig-dimension-perceiver-{name}"' in body
        assert f'id="levels-perceiver-{name}"' in body


def test_recommendation_table_on_the_page(hand_page: str) -> None:
    body = section(hand_page, "which-perceiver")
    select = re.search(r'<select data-group="recommend-perceiver"[^>]*>(.*?)</select>', body)
    assert select is not None
    assert re.findall(r'value="([^"]+)"', select.group(1)) == ["flops", "params", "latency_ms"]
    for axis, hidden in (("flops", False), ("params", True), ("latency_ms", True)):
        tag = re.search(rf'<table [^>]*id="recommend-perceiver-{axis}"[^>]*>', body)
        assert tag is not None and ("hidden" in tag.group(0)) == hidden
    table = body[body.index('id="recommend-perceiver-flops"') :]
    table = table[: table.index("</table>")]
    trs = re.findall(r'<tr data-trial="([^"]+)">(.*?)</tr>', table, re.S)
    assert [t for t, _ in trs] == ["p1", "p2@k1", "p2"]
    cells = [re.findall(r'<td class="[^"]*" data-value="([^"]*)"', tr) for _, tr in trs]
    # level, trial, val, test, baseline family, baseline val, gap
    assert [c[0] for c in cells] == ["10.0", "20.0", "40.0"]
    assert [c[4] for c in cells] == ["", "vit", "vit"]
    assert [c[5] for c in cells] == ["", "0.83", "0.87"]
    assert [round(float(c[6]), 4) if c[6] else None for c in cells] == [None, 0.02, 0.03]
    assert "+2.0 pts" in trs[1][1] and "anytime point: 1 of 2 iterations of trial p2" in trs[1][1]


def test_recommended_configs_are_copyable(hand_page: str) -> None:
    body = section(hand_page, "which-perceiver")
    box = re.search(r'id="cfg-json-which-perceiver-flops-1">(.*?)</textarea>', body, re.S)
    assert box is not None
    cfg = json.loads(html_mod.unescape(box.group(1)))
    assert cfg["num_latents"] == 32 and cfg["num_iterations"] == 1
    cli = re.search(r'id="cfg-cli-which-perceiver-flops-1">(.*?)</textarea>', body, re.S)
    assert cli is not None
    assert html_mod.unescape(cli.group(1)) == (
        "--set 'space.perceiver.num_latents=[32]' --set 'space.perceiver.num_iterations=[1]' "
        "--set 'space.perceiver.projection_dim=[32]' --set 'space.perceiver.patch_size=[2]'"
    )
    assert "paretotuneCopy('cfg-cli-which-perceiver-flops-1', this)" in body
    assert "function paretotuneAxis(" in static_text("report.js")


def test_levels_table_on_the_page(hand_page: str) -> None:
    body = section(hand_page, "which-perceiver")
    table = body[body.index('id="levels-perceiver-num_latents"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td>(.*?)</tr>", table)
    assert [(label, count) for label, count, _ in rows] == [
        ("N=16", "1 trial; 0 with &ge; 2 seeds (not measured)"),
        ("N=32", "2 trials, +1 anytime; 0 with &ge; 2 seeds (not measured)"),
    ]
    values = [re.findall(r'data-value="([^"]*)"', cells) for _, _, cells in rows]
    assert values == [["0.8", "0.8", "0.8"], ["", "0.85", "0.9"]]


def test_fixture_report_gains_which_sections(page: str, data: report.ReportData) -> None:
    """The fixture (perceiver, vit, mixer; a sweep records every named dimension) gets a
    section each, none of them with a dimension left out."""
    assert list(data.which) == ["perceiver", "vit", "mixer"]
    for fam, which in data.which.items():
        assert which.dimensions is not None and which.dimensions.unrecorded == (), fam
        assert f'<section id="which-{fam}">' in page
    assert "not recorded by any trial" not in page


def test_unrecorded_dimension_is_noted_on_the_page(results: report.Results) -> None:
    """Results of a sweep whose perceiver trials predate projection_dim (the fixture without
    it): the "Which perceiver" section names the dimension it could not compare."""
    rows = tuple(
        {k: v for k, v in r.items() if k != "hp.projection_dim"}
        | {"config": {k: v for k, v in r["config"].items() if k != "projection_dim"}}
        for r in results.rows
    )
    older = report.compute_report_data(
        report.Results(results.directory, results.experiment, results.objectives, rows), []
    )
    fd = older.which["perceiver"].dimensions
    assert fd is not None and fd.unrecorded == ("projection_dim",)
    page = render_page(older, report.draw_figures(older))
    assert "not recorded by any trial: projection_dim" in section(page, "which-perceiver")


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_cost_axis_select_switches_the_table(hand_page: str, tmp_path: Path) -> None:
    """In headless Chromium: choosing "params" shows that table and hides the FLOPs one."""
    check = """<script>window.addEventListener("load", function () {
      var s = document.querySelector('select[data-group="recommend-perceiver"]');
      s.value = "params"; s.dispatchEvent(new Event("change"));
      var out = document.createElement("pre"); out.id = "shown";
      out.textContent = JSON.stringify(Array.prototype.map.call(
        document.querySelectorAll('table[data-group="recommend-perceiver"]'),
        function (t) { return [t.getAttribute("data-axis"), !t.hidden]; }));
      document.body.appendChild(out);
    });</script>"""
    page = tmp_path / "report.html"
    page.write_text(hand_page.replace("</body>", check + "</body>"), encoding="utf-8")
    browser = chromium()
    assert browser
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
           "--dump-dom", page.as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    shown = re.search(r'<pre id="shown">(.*?)</pre>', proc.stdout)
    assert shown is not None, proc.stderr[-2000:]
    assert json.loads(html_mod.unescape(shown.group(1))) == [
        ["flops", False],
        ["params", True],
        ["latency_ms", False],
    ]

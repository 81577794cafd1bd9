"""The dataset's published results (search/data/published.py) in the report: markers on the
front's parameters view (data.py places them, figures/front.py draws them) and the table beside
this sweep's test accuracy (tables.py, page.py). Only a Fashion-MNIST report has them."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
from _report_helpers import by_kind, embedded_traces, fixture_trials, write_trials

from search import report
from search.data.published import PublishedResult, published_results, published_source
from search.report import data as report_data
from search.report.page import render_page

FASHION = "fashion_mnist"


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> report.ReportData:
    """The fixture's trials, as if swept on Fashion-MNIST (no presets)."""
    doc = fixture_trials()
    doc["experiment"]["dataset"]["name"] = FASHION
    out = write_trials(tmp_path_factory.mktemp("fashion"), doc)
    return report.compute_report_data(report.load_results(out), [])


@pytest.fixture(scope="module")
def fashion_figures(fashion: report.ReportData) -> dict[str, go.Figure]:
    return report.draw_figures(fashion)


@pytest.fixture(scope="module")
def fashion_page(fashion: report.ReportData, fashion_figures: dict[str, go.Figure]) -> str:
    return render_page(fashion, fashion_figures)


def _published_table(page: str) -> list[list[str]]:
    """The cells' texts of the published table's rows (tags stripped, entities decoded)."""
    m = re.search(r'<table class="sortable" id="published-table">.*?<tbody>(.*?)</tbody>', page)
    assert m, "no published table"
    rows = re.findall(r"<tr>(.*?)</tr>", m.group(1))
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows]


def test_params_view_carries_the_rows_with_a_count(
    fashion_figures: dict[str, go.Figure], fashion_page: str
) -> None:
    with_count = [r for r in published_results(FASHION) if r.params is not None]
    assert 0 < len(with_count) < len(published_results(FASHION))
    expected = sorted((r.params, r.test_accuracy) for r in with_count)
    for traces in (fashion_figures["front"].data, embedded_traces(fashion_page, "fig-front")):
        (trace,) = by_kind(list(traces), "params", "published")
        got = sorted(zip(trace["x"], trace["y"]))
        assert got == expected
        assert trace["name"] == "published (test accuracy)"
        assert "yaxis" not in trace or trace["yaxis"] in (None, "y")  # the accuracy axis
        # hover: model, test accuracy (said to be test, not validation), params, preprocessing
        # and submitter
        for r, text in zip(sorted(with_count, key=lambda r: r.params or 0), trace["hovertext"]):
            for part in (r.model, f"{100 * r.test_accuracy:.1f}%", r.preprocessing, r.submitter):
                assert html.escape(part) in text
            assert "test set" in text and "not this sweep's validation set" in text


def test_no_published_markers_off_the_params_view(fashion: report.ReportData) -> None:
    """A published table gives no FLOPs or latency: those views have no place for the rows."""
    views = {v.cost_key: v for v in fashion.front.views}
    assert {"flops", "params"} <= set(views)
    assert views["flops"].published == ()
    assert all(v.published == () for k, v in views.items() if k != "params")
    figure = report.draw_figures(fashion)["front"]
    kinds = [(t.meta["view"], t.meta["kind"]) for t in figure.data]
    assert [v for v, k in kinds if k == "published"] == ["params"]


def test_page_lists_every_published_row_and_its_source(fashion_page: str) -> None:
    rows = published_results(FASHION)
    assert len(rows) == 37
    table = _published_table(fashion_page)
    assert len(table) == len(rows)
    by_accuracy = sorted(rows, key=lambda r: -r.test_accuracy)
    assert [c[0] for c in table] == [r.model for r in by_accuracy]
    assert [float(c[2].rstrip("%")) for c in table] == [
        round(100 * r.test_accuracy, 1) for r in by_accuracy
    ]
    assert [c[1] == "-" for c in table] == [r.params is None for r in by_accuracy]
    assert [c[3:] for c in table] == [[r.preprocessing, r.submitter] for r in by_accuracy]
    assert html.escape(published_source(FASHION)) in fashion_page
    assert '<section id="published">' in fashion_page
    assert fashion_page.index('id="matched-cost"') < fashion_page.index('id="published"')
    # the front's explanation says the markers are test accuracy, not validation
    intro = fashion_page[fashion_page.index('<section id="front">') : fashion_page.index(
        'id="fig-front"')]  # fmt: skip
    assert "<b>test</b> accuracy" in intro and "val_accuracy" in intro


def test_sweep_test_accuracy_beside_the_table(
    fashion: report.ReportData, fashion_page: str
) -> None:
    """Overall and per family: the best COMPLETE test accuracy, and the best-val trial's."""
    pub = fashion.published
    assert pub is not None and (pub.dataset, pub.title) == (FASHION, "Fashion-MNIST")
    complete = [
        r for r in fashion.results.rows
        if r["status"] == "COMPLETE" and math.isfinite(r["val_accuracy"] or math.nan)
    ]  # fmt: skip
    for t in pub.sweep:
        rows = [r for r in complete if t.family in (None, r["family"])]
        assert t.n_trials == len(rows)
        assert t.best["test_accuracy"] == max(r["test_accuracy"] for r in rows)
        assert t.selected is max(rows, key=lambda r: r["val_accuracy"])
    assert [t.family for t in pub.sweep] == [None, *fashion.families]
    sweep = fashion_page[fashion_page.index('id="published-sweep"') :]
    sweep = sweep[: sweep.index("</table>")]
    best = pub.sweep[0].best
    assert f"{100 * best['test_accuracy']:.1f}%" in sweep and best["trial_id"] in sweep


def test_published_text_is_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fashion: report.ReportData
) -> None:
    odd = PublishedResult("<img src=x>", 0.9, 2e5, "a & b", "<script>x</script>")
    monkeypatch.setattr(report_data, "published_results", lambda _: (odd,))
    data = report.compute_report_data(fashion.results, [])
    figures = report.draw_figures(data)
    page = render_page(data, figures)
    assert "<img src=x>" not in page and "<script>x</script>" not in page
    assert _published_table(page)[0][0] == "<img src=x>"  # decoded: it was escaped
    (trace,) = by_kind(list(figures["front"].data), "params", "published")
    assert "&lt;img src=x&gt;" in trace.hovertext[0] and "&amp;" in trace.hovertext[0]


def test_a_digits_report_has_neither(
    data: report.ReportData, figures: dict[str, go.Figure], page: str
) -> None:
    assert data.results.dataset == "digits" and published_results("digits") == ()
    assert data.published is None
    assert all(v.published == () for v in data.front.views)
    assert not [t for t in figures["front"].data if t.meta["kind"] == "published"]
    assert 'id="published' not in page and "published (test accuracy)" not in page

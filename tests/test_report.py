"""Tests for search/report.py on the fixed fixture tests/fixtures/results_small.

The figures are checked against search/pareto.py directly (the plotted fronts are its fronts),
in the figure objects and in the JSON embedded in report.html. The browser and PNG tests need a
Chromium (Debian package ``chromium``) and are skipped, with the reason, without one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from search import pareto, report
from search.errors import UserError

FIXTURE = Path(__file__).parent / "fixtures" / "results_small"
SECTIONS = (
    "summary",
    "front",
    "matched-cost",
    "front-table",
    "hypervolume",
    "learning-curves",
    "families",
    "trial-status",
)
FAMILIES = ("perceiver", "vit", "mixer")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results") / "results_small"
    shutil.copytree(FIXTURE, out)
    return out


@pytest.fixture(scope="module")
def written(results_dir: Path) -> report.ReportFiles:
    """The report as ``paretotune report DIR`` writes it (presets from models.PRESETS)."""
    return report.write_report(results_dir)


@pytest.fixture(scope="module")
def page(written: report.ReportFiles) -> str:
    return written.html.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def results(results_dir: Path) -> report.Results:
    return report.load_results(results_dir)


@pytest.fixture(scope="module")
def figures(results: report.Results) -> dict[str, go.Figure]:
    return report.build_figures(results, presets=[])


def _embedded_traces(page: str, div_id: str) -> list[dict[str, Any]]:
    """The trace list passed to ``Plotly.newPlot("<div_id>", [...])`` in the page."""
    m = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*', page)
    assert m, f"no Plotly.newPlot for {div_id}"
    traces, _ = json.JSONDecoder().raw_decode(page, m.end())
    return traces


def _by_kind(traces: list[Any], view: str, kind: str) -> list[Any]:
    def meta(t: Any) -> dict[str, Any]:
        m = t["meta"] if isinstance(t, dict) else t.meta
        return m or {}

    return [t for t in traces if meta(t).get("view") == view and meta(t).get("kind") == kind]


# ---------------------------------------------------------------------------------------------
# the fixture and the inputs


def test_fixture_is_reproducible(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_results_small", FIXTURE.parent / "make_results_small.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.write(tmp_path)
    for name in ("trials.json", "trials.csv", "experiment.yaml"):
        assert (tmp_path / name).read_bytes() == (FIXTURE / name).read_bytes(), name


def test_load_results(results: report.Results) -> None:
    assert results.name == "fixture-small"
    assert results.families == FAMILIES
    assert [o.name for o in results.objectives] == ["val_accuracy", "flops"]
    assert {r["status"] for r in results.rows} == {"COMPLETE", "STOPPED", "FAILED", "INFEASIBLE"}
    assert results.accuracy_key == "val_accuracy" and results.cost_key == "flops"


def test_missing_results_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"trials\.json"):
        report.write_report(tmp_path)


# ---------------------------------------------------------------------------------------------
# the page


def test_report_is_self_contained(written: report.ReportFiles, page: str) -> None:
    assert os.fspath(written) == str(written.html) == str(written)
    assert Path(written) == written.html
    assert written.html.name == "report.html" and written.pngs == {}
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1, "plotly.js must be embedded exactly once"
    rest = page.replace(bundle, "")
    assert not re.search(r"<script[^>]*\bsrc\s*=", rest, re.I), "no external script"
    assert '<script src="http' not in page
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", rest, re.I)
    # the plotly.js bundle itself mentions CDNs (map tiles, topojson); nothing else may
    assert "cdn" not in rest.lower()
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:)?//", rest, re.I)


def test_report_holds_every_section_and_figure(page: str, figures: dict[str, go.Figure]) -> None:
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page, sid
    expected = {"front", "hypervolume", "learning_curves"} | {
        f"{kind}:{f}" for f in FAMILIES for kind in ("parcoords", "importance")
    }
    assert set(figures) == expected
    for key in expected:
        div = "fig-" + key.replace(":", "-")
        assert f'id="{div}"' in page, div
        assert _embedded_traces(page, div), f"{div} has no traces"
    assert page.count("Plotly.newPlot(") == len(expected)
    for f in FAMILIES:
        assert f'id="family-{f}"' in page


def test_embedded_front_equals_pareto_fronts(page: str, results: report.Results) -> None:
    traces = _embedded_traces(page, "fig-front")
    for key, _ in report.COST_AXES:
        fr = pareto.fronts(results.rows, {"val_accuracy": "max", key: "min"})
        for fam, front in fr.by_family.items():
            (t,) = [t for t in _by_kind(traces, key, "family_front") if t["meta"]["family"] == fam]
            assert t["x"] == list(front.column(key))
            assert t["y"] == list(front.column("val_accuracy"))
            assert t["customdata"] == list(front.trial_ids)
            assert t["line"]["shape"] == "hv"
        (t,) = _by_kind(traces, key, "overall_front")
        assert t["x"] == list(fr.overall.column(key))
        assert t["y"] == list(fr.overall.column("val_accuracy"))
        assert t["customdata"] == list(fr.overall.trial_ids)
        # every eligible trial is drawn once, nothing else
        drawn = sorted(i for t in _by_kind(traces, key, "points") for i in t["customdata"])
        assert drawn == sorted(str(r["trial_id"]) for r in fr.eligible)


def test_front_figure_objects_equal_pareto_fronts(
    figures: dict[str, go.Figure], results: report.Results
) -> None:
    fig = figures["front"]
    fr = pareto.fronts(results.rows, results.objectives)
    (t,) = _by_kind(list(fig.data), "flops", "overall_front")
    assert tuple(t.customdata) == fr.overall.trial_ids
    assert list(zip(t.y, t.x)) == [p.values for p in fr.overall.points]
    assert fig.layout.xaxis.type == "log"
    infeasible = _by_kind(list(fig.data), "flops", "infeasible")
    assert sorted(infeasible[0].customdata) == sorted(
        r["trial_id"] for r in results.rows if r["status"] == "INFEASIBLE"
    )


def test_cost_dropdown_switches_views(figures: dict[str, go.Figure]) -> None:
    fig = figures["front"]
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == [title for _, title in report.COST_AXES]
    for (key, title), button in zip(report.COST_AXES, menu.buttons):
        visible = button.args[0]["visible"]
        assert visible == [t.meta["view"] == key for t in fig.data]
        assert button.args[1]["xaxis.title.text"].startswith(title)
    # the first view (FLOPs) is the one shown on load
    assert [t.visible is not False for t in fig.data] == [
        t.meta["view"] == "flops" for t in fig.data
    ]


def test_hover_shows_config_costs_epochs_and_id(figures: dict[str, go.Figure]) -> None:
    (t,) = [t for t in _by_kind(list(figures["front"].data), "flops", "family_front")
            if t.meta["family"] == "vit"]  # fmt: skip
    text = t.text[0]
    for needle in (t.customdata[0], "FLOPs:", "params:", "latency:", "epochs:", "config:",
                   "lr:", "patch_size:"):  # fmt: skip
        assert needle in text, needle


def test_presets_drawn_at_estimated_cost(figures: dict[str, go.Figure], page: str) -> None:
    try:
        import models
        from models import cost

        presets = dict(models.PRESETS)
        cost.estimate  # noqa: B018 - the contract's entry point must exist
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"models.PRESETS / models.cost.estimate not importable yet: {exc}")
    traces = _embedded_traces(page, "fig-front")
    drawn = {name: (x, y, t["meta"]["reported"])
             for t in _by_kind(traces, "flops", "preset")
             for name, x, y in zip(t["text"], t["x"], t["y"])}  # fmt: skip
    assert set(drawn) == set(presets)
    for name, p in presets.items():
        c = cost.estimate(p.family, image_size=p.image_size, in_channels=p.in_channels,
                          num_classes=p.num_classes, **p.hparams)  # fmt: skip
        x, y, reported = drawn[name]
        assert x == pytest.approx(c.flops)
        assert reported == (p.reported_top1 is not None)
        if p.reported_top1 is not None:
            assert y == pytest.approx(p.reported_top1)
    params = {n: x for t in _by_kind(traces, "params", "preset")
              for n, x in zip(t["text"], t["x"])}  # fmt: skip
    assert set(params) == set(presets)


def test_presets_missing_is_a_note_not_an_error(results: report.Results) -> None:
    fig = report._front_figure(results, [], ["seed presets not drawn: test"])
    assert not [t for t in fig.data if t.meta["kind"] == "preset"]
    assert report._notes(fig) == ["seed presets not drawn: test"]


def test_hypervolume_curves_come_from_pareto(
    figures: dict[str, go.Figure], results: report.Results
) -> None:
    ref = pareto.default_reference(results.rows, results.objectives)
    hist = pareto.hypervolume_history(results.rows, results.objectives, ref)
    traces = {(t.meta["family"], t.meta["x"]): t for t in figures["hypervolume"].data}
    assert set(traces) == {(f, x) for f in (None, *FAMILIES) for x in ("trial", "time")}
    assert list(traces[None, "trial"].y) == list(hist.hypervolume)
    assert list(traces[None, "trial"].x) == list(range(1, len(results.rows) + 1))
    assert list(traces[None, "time"].y) == list(hist.hypervolume)
    final = pareto.front_hypervolume(pareto.fronts(results.rows, results.objectives).overall, ref)
    assert traces[None, "trial"].y[-1] == pytest.approx(final)
    for f in FAMILIES:
        assert traces[f, "trial"].y[-1] <= final + 1e-12


def test_learning_curves_of_front_members(
    figures: dict[str, go.Figure], results: report.Results
) -> None:
    fr = pareto.fronts(results.rows, results.objectives)
    members = {i for f in fr.by_family.values() for i in f.trial_ids}
    curves = {t.meta["trial_id"]: t for t in figures["learning_curves"].data}
    assert set(curves) == members
    rows = {r["trial_id"]: r for r in results.rows}
    for tid, t in curves.items():
        assert list(t.y) == [h["val_accuracy"] for h in rows[tid]["history"]]
        assert t.meta["overall_front"] == (tid in fr.overall.trial_ids)


def test_parallel_coordinates_per_family(
    figures: dict[str, go.Figure], results: report.Results
) -> None:
    for fam in FAMILIES:
        (pc,) = figures[f"parcoords:{fam}"].data
        rows = [r for r in pareto.eligible_rows(results.rows, results.objectives)
                if r["family"] == fam]  # fmt: skip
        assert pc.meta["trial_ids"] == [r["trial_id"] for r in rows]
        labels = [d.label for d in pc.dimensions]
        assert labels[-1] == "val_accuracy"
        assert list(pc.line.color) == [r["val_accuracy"] for r in rows]
        assert "log10(lr)" in labels and "dropout" in labels and "family" not in labels


def test_importance_per_family_and_objective(figures: dict[str, go.Figure]) -> None:
    for fam in FAMILIES:
        bars = figures[f"importance:{fam}"].data
        assert [b.meta["objective"] for b in bars] == ["val_accuracy", "flops"]
        for b in bars:
            assert sum(b.x) == pytest.approx(1.0)
            assert "family" not in b.y
        assert "trials.json" in figures[f"importance:{fam}"].layout.title.text


def test_importance_with_too_few_trials(results: report.Results) -> None:
    few = report.Results(results.directory, results.experiment, results.objectives,
                         tuple(r for r in results.rows if r["number"] in (0, 9)))  # fmt: skip
    fig = report._importance_figure(few, "vit")
    assert not fig.data
    assert any("at least 3" in n for n in report._notes(fig))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_importance_reads_the_optuna_study(tmp_path: Path, results: report.Results) -> None:
    import optuna

    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    storage = f"sqlite:///{out / 'optuna.db'}"
    study = optuna.create_study(study_name="fixture-small", storage=storage,
                                directions=["maximize", "minimize"])  # fmt: skip
    study.set_metric_names(["val_accuracy", "flops"])
    for r in results.rows:  # in order: study trial numbers are the rows' numbers
        fam = r["family"]
        params = {("" if k in ("lr", "weight_decay") else f"{fam}.") + k: r[f"hp.{k}"]
                  for k in ("lr", "weight_decay", "dropout", "patch_size")}  # fmt: skip
        dists = {
            f"{fam}.dropout": optuna.distributions.FloatDistribution(0.0, 0.25),
            f"{fam}.patch_size": optuna.distributions.CategoricalDistribution([1, 2, 4]),
            "lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
            "weight_decay": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
            "family": optuna.distributions.CategoricalDistribution(list(FAMILIES)),
        }
        measured = r["status"] in ("COMPLETE", "STOPPED")
        study.add_trial(optuna.trial.create_trial(
            params={"family": fam, **params}, distributions=dists,
            values=[r["val_accuracy"], r["flops"]] if measured else None,
            state=optuna.trial.TrialState.COMPLETE if measured else optuna.trial.TrialState.FAIL,
            user_attrs={"family": fam, "status": r["status"]},
        ))  # fmt: skip
    assert [t.number for t in study.trials] == [r["number"] for r in results.rows]
    fig = report._importance_figure(report.load_results(out), "vit")
    assert "optuna.db" in fig.layout.title.text
    params = set(fig.data[0].y)
    assert params == {"lr", "weight_decay", "dropout", "patch_size"}  # prefixes stripped


def test_matched_cost_table(page: str, results: report.Results) -> None:
    fr = pareto.fronts(results.rows, {"val_accuracy": "max", "flops": "min"})
    costs = [c for f in fr.by_family.values() for c in f.column("flops")]
    m = pareto.matched_accuracy(fr.by_family, pareto.cost_levels(min(costs), max(costs)))
    table = page[page.index('id="matched-cost-table"') :]
    table = table[: table.index("</table>")]
    body = re.findall(r"<tr>(.*?)</tr>", table)[1:]  # the first row is the header
    assert len(body) == len(m.costs)
    for i, tr in enumerate(body):
        values = re.findall(r'data-value="([^"]*)"', tr)
        assert float(values[0]) == m.costs[i]
        for fam, v in zip(report._family_sort(m.accuracy), values[1:]):
            expected = m.accuracy[fam][i]
            assert (float(v) if v else None) == expected
    assert "For example, <b>at " in page


def test_front_table_is_sortable_with_copyable_configs(page: str, results: report.Results) -> None:
    table = page[page.index('id="front-table"') :]
    table = table[: table.index("</table>")]
    fr = pareto.fronts(results.rows, results.objectives)
    members = [i for f in fr.by_family.values() for i in f.trial_ids]
    assert sorted(re.findall(r'<tr data-trial="([^"]+)"', table)) == sorted(members)
    assert 'class="sortable"' in page[page.index('id="front-table"') - 40 :]
    assert table.count("paretotuneCopy(") == 2 * len(members)
    rows = {r["trial_id"]: r for r in results.rows}
    import html as html_mod

    for tid in members:
        tr = re.search(rf'<tr data-trial="{tid}">(.*?)</tr>', table, re.S)
        assert tr is not None
        box = re.search(r'id="cfg-json-\d+">(.*?)</textarea>', tr.group(1), re.S)
        assert box is not None
        assert json.loads(html_mod.unescape(box.group(1))) == rows[tid]["config"]


def test_status_counts_and_reasons(page: str) -> None:
    section = page[page.index('<section id="trial-status">') :]
    section = section[: section.index("</section>")]
    assert "RuntimeError: loss became NaN at epoch 2 (lr=0.0093)" in section
    assert "ray.exceptions.RayTaskError: worker died" in section
    assert "flops 6.87e+08 &gt; budget 3e+08" in section
    assert "early-stopped by the scheduler after 2 epochs" in section
    totals = re.search(r"<tr><td><b>all</b></td>(.*?)</tr>", section)
    assert totals is not None
    assert re.findall(r"<b>(\d+)</b>", totals.group(1)) == ["13", "4", "3", "2", "0", "22"]


def test_three_objectives(tmp_path: Path) -> None:
    doc = json.loads((FIXTURE / "trials.json").read_text())
    doc["objectives"] = {"val_accuracy": "max", "flops": "min", "latency_ms": "min"}
    (tmp_path / "trials.json").write_text(json.dumps(doc))
    results = report.load_results(tmp_path)
    figs = report.build_figures(results, presets=[])
    fr = pareto.fronts(results.rows, results.objectives)
    ref = pareto.default_reference(results.rows, results.objectives)
    (overall,) = [t for t in figs["hypervolume"].data if t.meta == {
        "kind": "hypervolume", "family": None, "x": "trial"}]  # fmt: skip
    assert overall.y[-1] == pytest.approx(pareto.front_hypervolume(fr.overall, ref))
    assert ref.log_scale == (False, True, True)
    assert [b.meta["objective"] for b in figs["importance:vit"].data] == [
        "val_accuracy", "flops", "latency_ms"]  # fmt: skip


def test_empty_results_still_render(tmp_path: Path) -> None:
    doc = {"experiment": {"name": "empty"}, "objectives": {"val_accuracy": "max", "flops": "min"},
           "trials": [{"trial_id": "x", "number": 0, "family": "vit", "status": "FAILED",
                       "failure_reason": "boom", "val_accuracy": None, "flops": 1e6}]}  # fmt: skip
    (tmp_path / "trials.json").write_text(json.dumps(doc))
    out = report.write_report(tmp_path, presets=[])
    text = out.html.read_text()
    assert "boom" in text and 'id="fig-front"' in text


# ---------------------------------------------------------------------------------------------
# PNG export


def test_png_without_browser_writes_html_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    files = report.write_report(out, png=True, presets=[])
    assert files.html.is_file() and files.pngs == {}
    assert files.png_error and "chromium" in files.png_error
    assert "PNG export failed" in capsys.readouterr().err


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_png_export(tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    files = report.write_report(out, png=True, presets=[])
    assert files.png_error is None, files.png_error
    assert set(files.pngs) == set(report.MAIN_FIGURES)
    for path in files.pngs.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


# ---------------------------------------------------------------------------------------------
# the page in a real browser

_COLLECTOR = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  window.__errors.push("error: " + (e.message || String(e)));
});
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("unhandled rejection: " + String(e.reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = document.createElement("pre");
    out.id = "js-errors";
    out.textContent = JSON.stringify(window.__errors);
    document.body.appendChild(out);
    var n = document.createElement("pre");
    n.id = "plots-rendered";
    var plots = Array.prototype.slice.call(document.querySelectorAll(".js-plotly-plot"));
    n.textContent = String(plots.filter(function (d) {
      return d.querySelector(".main-svg") !== null;
    }).length);
    document.body.appendChild(n);
  }, 1000);
});
</script>"""


def _dump_dom(page: Path, profile: Path) -> str:
    chromium = _chromium()
    assert chromium
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
        "--window-size=1300,2000", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _collected(dom: str) -> tuple[list[str], int]:
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', dom, re.S)
    rendered = re.search(r'<pre id="plots-rendered">(\d+)</pre>', dom)
    assert errors and rendered, "the error collector did not run"
    import html as html_mod

    return json.loads(html_mod.unescape(errors.group(1))), int(rendered.group(1))


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_collector_catches_errors(tmp_path: Path) -> None:
    """Negative control: the harness below does see a JavaScript error."""
    page = tmp_path / "bad.html"
    page.write_text(f"<html><head>{_COLLECTOR}</head><body><script>undefinedFunction();"
                    "</script></body></html>")  # fmt: skip
    errors, _ = _collected(_dump_dom(page, tmp_path / "profile"))
    assert errors and "undefinedFunction" in errors[0]


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_report_renders_without_javascript_errors(
    page: str, figures: dict[str, go.Figure], tmp_path: Path
) -> None:
    instrumented = tmp_path / "report.html"
    # after load, sort the front table by accuracy (4th column) by clicking its header twice
    sort_check = """<script>window.addEventListener("load", function () {
      var th = document.querySelector("#front-table thead th:nth-child(4)");
      th.click(); th.click();
      var out = document.createElement("pre");
      out.id = "sorted";
      out.textContent = JSON.stringify(Array.prototype.map.call(
        document.querySelectorAll("#front-table tbody tr td:nth-child(4)"),
        function (td) { return parseFloat(td.getAttribute("data-value")); }));
      document.body.appendChild(out);
    });</script>"""
    text = page.replace("<head>", "<head>" + _COLLECTOR, 1).replace(
        "</body>", sort_check + "</body>"
    )
    instrumented.write_text(text, encoding="utf-8")
    dom = _dump_dom(instrumented, tmp_path / "profile")
    errors, rendered = _collected(dom)
    assert errors == []
    assert rendered == len(figures)  # every figure drew its SVG
    assert dom.count('class="main-svg"') >= len(figures)
    sorted_acc = re.search(r'<pre id="sorted">(.*?)</pre>', dom)
    assert sorted_acc is not None
    values = json.loads(sorted_acc.group(1))
    assert values and values == sorted(values, reverse=True)  # second click: descending

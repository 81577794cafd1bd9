"""search/report/page.py and tables.py: the self-contained page, its sections and tables."""

from __future__ import annotations

import html as html_mod
import json
import os
import re
from pathlib import Path

import plotly.graph_objects as go
from _report_helpers import FAMILIES, SECTIONS, embedded_traces
from plotly.offline import get_plotlyjs

from search import pareto, report
from search.report.inputs import family_sort


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


def test_static_css_and_js_are_inline(page: str) -> None:
    """The package data (search/report/static/) is in the page, not linked."""
    from search.report.page import static_text

    for name in ("report.css", "report.js"):
        text = static_text(name)
        assert text.strip() and page.count(text) == 1, name
    assert "function paretotuneCopy(" in static_text("report.js")


def test_report_holds_every_section_and_figure(page: str, figures: dict[str, go.Figure]) -> None:
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page, sid
    expected = {"front", "hypervolume", "learning_curves"} | {
        f"{kind}:{f}" for f in FAMILIES for kind in ("parcoords", "importance")
    }
    # the "Which <family>" figures: one per named dimension (the fixture records them all)
    named = {"perceiver": ("num_latents", "num_iterations", "projection_dim", "patch_size"),
             "vit": ("patch_size", "embed_dim", "depth"),
             "mixer": ("patch_size", "hidden_dim", "num_blocks")}  # fmt: skip
    expected |= {f"dimension:{f}:{n}" for f, names in named.items() for n in names}
    assert set(figures) == expected
    for key in expected:
        div = "fig-" + key.replace(":", "-")
        assert f'id="{div}"' in page, div
        assert embedded_traces(page, div), f"{div} has no traces"
    assert page.count("Plotly.newPlot(") == len(expected)
    for f in FAMILIES:
        assert f'id="family-{f}"' in page


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
        for fam, v in zip(family_sort(m.accuracy), values[1:]):
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

    for tid in members:
        tr = re.search(rf'<tr data-trial="{tid}">(.*?)</tr>', table, re.S)
        assert tr is not None
        box = re.search(r'id="cfg-json-\d+">(.*?)</textarea>', tr.group(1), re.S)
        assert box is not None
        assert json.loads(html_mod.unescape(box.group(1))) == rows[tid]["config"]


def test_status_counts_and_reasons(page: str) -> None:
    section = page[page.index('<section id="trial-status">') :]
    section = section[: section.index("</section>")]
    assert "non-finite loss: loss=nan at epoch 2, step 31" in section
    assert "ray.exceptions.ActorDiedError: The actor died" in section
    assert "over budget: flops 6.114e+08 &gt; 3e+08" in section
    assert "early-stopped by the scheduler after 2 epochs" in section
    totals = re.search(r"<tr><td><b>all</b></td>(.*?)</tr>", section)
    assert totals is not None
    assert re.findall(r"<b>(\d+)</b>", totals.group(1)) == ["13", "4", "3", "2", "0", "22"]


def test_render_html_from_results_or_data(
    results: report.Results, data: report.ReportData, figures: dict[str, go.Figure]
) -> None:
    """``render_html`` takes the ReportData; from the Results it computes the same page."""
    assert report.render_html(results, figures) == report.render_html(data, figures)


def test_empty_results_still_render(tmp_path: Path) -> None:
    doc = {"experiment": {"name": "empty"}, "objectives": {"val_accuracy": "max", "flops": "min"},
           "trials": [{"trial_id": "x", "number": 0, "family": "vit", "status": "FAILED",
                       "failure_reason": "boom", "val_accuracy": None, "flops": 1e6}]}  # fmt: skip
    (tmp_path / "trials.json").write_text(json.dumps(doc))
    out = report.write_report(tmp_path, presets=[])
    text = out.html.read_text()
    assert "boom" in text and 'id="fig-front"' in text

"""search/report/figures/: every figure against search/pareto/ directly (the plotted fronts
are its fronts), in the figure objects and in the JSON embedded in report.html."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import plotly.graph_objects as go
import pytest
from _report_helpers import (
    FAMILIES,
    FIXTURE,
    by_kind,
    embedded_traces,
    fixture_generator,
    fixture_trials,
    write_trials,
)

from search import pareto, report
from search.report import data as report_data
from search.report.figures import front_figure, importance_figure, notes


def test_embedded_front_equals_pareto_fronts(page: str, results: report.Results) -> None:
    traces = embedded_traces(page, "fig-front")
    for key, _ in report.COST_AXES:
        fr = pareto.fronts(results.rows, {"val_accuracy": "max", key: "min"})
        for fam, front in fr.by_family.items():
            (t,) = [t for t in by_kind(traces, key, "family_front") if t["meta"]["family"] == fam]
            assert t["x"] == list(front.column(key))
            assert t["y"] == list(front.column("val_accuracy"))
            assert t["customdata"] == list(front.trial_ids)
            assert t["line"]["shape"] == "hv"
        (t,) = by_kind(traces, key, "overall_front")
        assert t["x"] == list(fr.overall.column(key))
        assert t["y"] == list(fr.overall.column("val_accuracy"))
        assert t["customdata"] == list(fr.overall.trial_ids)
        # every eligible trial is drawn once, nothing else
        drawn = sorted(i for t in by_kind(traces, key, "points") for i in t["customdata"])
        assert drawn == sorted(str(r["trial_id"]) for r in fr.eligible)


def test_front_figure_objects_equal_pareto_fronts(
    figures: dict[str, go.Figure], results: report.Results
) -> None:
    fig = figures["front"]
    fr = pareto.fronts(results.rows, results.objectives)
    (t,) = by_kind(list(fig.data), "flops", "overall_front")
    assert tuple(t.customdata) == fr.overall.trial_ids
    assert list(zip(t.y, t.x)) == [p.values for p in fr.overall.points]
    assert fig.layout.xaxis.type == "log"
    infeasible = by_kind(list(fig.data), "flops", "infeasible")
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
    (t,) = [t for t in by_kind(list(figures["front"].data), "flops", "family_front")
            if t.meta["family"] == "vit"]  # fmt: skip
    text = t.text[0]
    for needle in (t.customdata[0], "FLOPs:", "params:", "latency:", "epochs:", "config:",
                   "lr:", "patch_size:"):  # fmt: skip
        assert needle in text, needle


def test_presets_drawn_at_estimated_cost(page: str, results: report.Results) -> None:
    try:
        import models
        from models import cost

        presets = dict(models.PRESETS)
        cost.estimate  # noqa: B018 - the contract's entry point must exist
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"models.PRESETS / models.cost.estimate not importable yet: {exc}")
    traces = embedded_traces(page, "fig-front")
    drawn = {name: (x, y, t["meta"]["reported"])
             for t in by_kind(traces, "flops", "preset")
             for name, x, y in zip(t["text"], t["x"], t["y"])}  # fmt: skip
    assert set(drawn) == set(presets)
    for name, p in presets.items():
        c = cost.estimate(p.family, image_size=p.image_size, in_channels=p.in_channels,
                          num_classes=p.num_classes, **p.hparams)  # fmt: skip
        x, _, reported = drawn[name]
        assert x == pytest.approx(c.flops)
        # an accuracy measured on other data is never a y value on this sweep's plot
        assert p.dataset != results.dataset and not reported, name
    params = {n: x for t in by_kind(traces, "params", "preset")
              for n, x in zip(t["text"], t["x"])}  # fmt: skip
    assert set(params) == set(presets)


def test_presets_take_their_reported_accuracy_only_on_their_own_dataset(
    results: report.Results,
) -> None:
    import dataclasses

    import models

    presets, _ = report_data.preset_points()
    on_cifar100 = dataclasses.replace(
        results, experiment={**results.experiment, "dataset": {"name": "cifar100"}}
    )
    fig = front_figure(report.compute_report_data(on_cifar100, presets))
    drawn = {name: (y, t.meta["reported"]) for t in by_kind(list(fig.data), "flops", "preset")
             for name, y in zip(t.text, t.y)}  # fmt: skip
    for name, p in models.PRESETS.items():
        y, reported = drawn[name]
        assert reported == (p.reported_top1 is not None), name
        if reported:
            assert y == pytest.approx(p.reported_top1)
    fig = front_figure(report.compute_report_data(results, presets))  # digits: cost alone
    ys = [y for t in by_kind(list(fig.data), "flops", "preset") for y in t.y]
    assert ys and ys == [0.07] * len(ys)


def test_presets_missing_is_a_note_not_an_error(
    results: report.Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``models`` not importable: ``preset_points`` returns no presets and a note."""
    monkeypatch.setattr(
        report_data, "preset_points", lambda: ([], ["seed presets not drawn: test"])
    )
    fig = front_figure(report.compute_report_data(results))
    assert not [t for t in fig.data if t.meta["kind"] == "preset"]
    assert notes(fig) == ["seed presets not drawn: test"]


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
    fig = importance_figure(report.compute_report_data(few, []), "vit")
    assert not fig.data
    assert any("at least 3" in n for n in notes(fig))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_importance_reads_the_optuna_study(tmp_path: Path, results: report.Results) -> None:
    """With the sweep's ``optuna.db`` beside the tables (here: the fixture's own study, as the
    generator builds it), importance comes from its trials, ``<family>.`` prefixes stripped."""
    import optuna

    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    gen = fixture_generator()
    exp = gen.make_experiment()
    built = gen.make_study(exp)
    study = optuna.create_study(study_name=exp.name, storage=f"sqlite:///{out / 'optuna.db'}",
                                directions=built.directions)  # fmt: skip
    study.set_metric_names(exp.objective_names)
    study.add_trials(built.trials)
    assert [t.number for t in study.trials] == [r["number"] for r in results.rows]
    fig = importance_figure(report.compute_report_data(report.load_results(out), []), "vit")
    assert "optuna.db" in fig.layout.title.text
    # vit.* without the prefix, and the shared training choices every vit trial made (the
    # learning rate is <optimizer>.lr: in only some trials' space, so fANOVA leaves it out)
    assert set(fig.data[0].y) == {
        "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "pool", "dropout",
        "optimizer", "weight_decay", "batch_size", "warmup_epochs", "label_smoothing",
    }  # fmt: skip


def test_three_objectives(tmp_path: Path) -> None:
    doc = fixture_trials()
    doc["objectives"] = {"val_accuracy": "max", "flops": "min", "latency_ms": "min"}
    results = report.load_results(write_trials(tmp_path, doc))
    figs = report.build_figures(results, presets=[])
    fr = pareto.fronts(results.rows, results.objectives)
    ref = pareto.default_reference(results.rows, results.objectives)
    (overall,) = [t for t in figs["hypervolume"].data if t.meta == {
        "kind": "hypervolume", "family": None, "x": "trial"}]  # fmt: skip
    assert overall.y[-1] == pytest.approx(pareto.front_hypervolume(fr.overall, ref))
    assert ref.log_scale == (False, True, True)
    assert [b.meta["objective"] for b in figs["importance:vit"].data] == [
        "val_accuracy", "flops", "latency_ms"]  # fmt: skip


def test_front_points_carry_their_intervals_as_error_bars(results: report.Results) -> None:
    import dataclasses

    from search.pareto import row_interval, wilson

    rows = {str(r["trial_id"]): r for r in results.rows}
    fig = front_figure(report.compute_report_data(results, []))
    fronts = by_kind(list(fig.data), "flops", "family_front")
    assert fronts
    for t in fronts:  # 2 seeds each, the family's pooled seed sd: the membership model's
        for tid, acc, up, down in zip(t.customdata, t.y, t.error_y.array, t.error_y.arrayminus):
            row = rows[tid]
            sd = math.sqrt((row["val_accuracy_family_seed_sd"] ** 2 + acc * (1 - acc) / 216) / 2)
            assert up == pytest.approx(1.959964 * sd) == pytest.approx(down)
            assert row_interval(row, "val_accuracy") == pytest.approx((acc - up, acc + up))
        assert "95%, 2 seed(s), family seed sd" in t.text[0]
    # two seeds without the family's pooled sd (hand-made rows): the t interval of the mean
    unpooled = tuple(
        {k: v for k, v in r.items() if not k.endswith("_family_seed_sd")} for r in results.rows
    )
    fig = front_figure(report.compute_report_data(dataclasses.replace(results, rows=unpooled), []))
    for t in by_kind(list(fig.data), "flops", "family_front"):
        assert "95% t, 2 seeds" in t.text[0]
    # one seed: the evaluation set's Wilson interval (216 val images)
    one = tuple(
        {**{k: v for k, v in r.items() if not k.endswith(("_seeds", "_seed_sd"))},
         "val_images": 216,
         **dict(zip(("val_accuracy_low", "val_accuracy_high"),
                    wilson(r.get("val_accuracy"), 216) or (None, None)))}
        for r in results.rows
    )  # fmt: skip
    fig = front_figure(report.compute_report_data(dataclasses.replace(results, rows=one), []))
    for t in by_kind(list(fig.data), "flops", "family_front"):
        for acc, up in zip(t.y, t.error_y.array):
            assert up == pytest.approx((wilson(acc, 216) or (0, 0))[1] - acc)
        assert "95% Wilson, 216 images" in t.text[0]
    # rows without any interval (older results) draw no bars rather than wrong ones
    bare = tuple(
        {k: v for k, v in r.items() if not k.startswith("val_accuracy_")} for r in results.rows
    )
    plain = front_figure(report.compute_report_data(dataclasses.replace(results, rows=bare), []))
    assert all(t.error_y.array is None for t in by_kind(list(plain.data), "flops", "family_front"))


def test_the_seeds_attainment_band_is_drawn_under_the_fronts(results: report.Results) -> None:
    from search.pareto import attainment_band, fronts

    fig = front_figure(report.compute_report_data(results, []))
    band = by_kind(list(fig.data), "flops", "attainment")
    assert [t.meta["percentile"] for t in band] == [75.0, 25.0, 50.0]
    assert band[1].fill == "tonexty"  # the 25-75 % band is the area between the two
    expected = attainment_band(
        fronts(results.rows, {"val_accuracy": "max", "flops": "min"}).eligible,
        "val_accuracy",
        "flops",
    )
    assert expected is not None
    for t in band:
        assert list(zip(t.x, t.y)) == list(expected.surfaces[t.meta["percentile"]])
    first = [t.meta["kind"] for t in fig.data if t.meta["view"] == "flops"]
    assert first[:3] == ["attainment"] * 3  # drawn first: under every point


def test_a_confirmation_draws_the_front_of_the_seed_means_and_names_what_changed(
    results: report.Results,
) -> None:
    import dataclasses

    data = report.compute_report_data(results, [])
    assert not by_kind(list(front_figure(data).data), "flops", "confirmed_front")
    top = data.fronts.overall.points[-1].row  # the most accurate trial of the front
    seeds = [*top["val_accuracy_seeds"], 0.30, 0.31]  # two confirmations far below
    mean = sum(seeds) / len(seeds)
    confirmed = tuple(
        {**r, "confirmations": 2, "val_accuracy_seeds": seeds, "confirmed_val_accuracy": mean}
        if r["trial_id"] == top["trial_id"]
        else r
        for r in results.rows
    )
    fig = front_figure(report.compute_report_data(dataclasses.replace(results, rows=confirmed), []))
    (trace,) = by_kind(list(fig.data), "flops", "confirmed_front")
    assert top["trial_id"] not in trace.customdata  # its seeds' mean is off the front now
    assert f"left it: {top['trial_id']}" in " ".join(notes(fig))

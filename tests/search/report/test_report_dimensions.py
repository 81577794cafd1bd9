"""search/report/dimensions.py: the "Which <family>" data (named dimensions per value, the
recommendation table) equal what hand-built trials say, checked by hand."""

from __future__ import annotations

from typing import Any

import pytest
from _which_rows import DIMENSIONS, PERCEIVER, ROWS, hand_results, row

from search import pareto, report
from search.report.dimensions import AnytimeOrigin, matched_levels


@pytest.fixture(scope="module")
def hand() -> report.ReportData:
    return report.compute_report_data(hand_results(), [], dimensions=DIMENSIONS)


def values(hand: report.ReportData, name: str) -> dict[Any, Any]:
    fd = hand.which["perceiver"].dimensions
    assert fd is not None
    (dim,) = [d for d in fd.dimensions if d.name == name]
    return {v.value: v for v in dim.values}


def test_sections_only_for_named_families_with_complete_rows(hand: report.ReportData) -> None:
    # mixer has rows but no named dimensions here; fnet has no rows; gmlp only a STOPPED one
    assert list(hand.which) == ["perceiver", "vit"]
    assert hand.which["perceiver"].names == PERCEIVER


def test_counts_per_value(hand: report.ReportData) -> None:
    """Trained trials and anytime points counted apart; the STOPPED p4 not at all."""
    counts = {
        name: {v: (d.n_trials, d.n_anytime, d.trial_ids) for v, d in values(hand, name).items()}
        for name in PERCEIVER
    }
    assert counts == {
        "num_latents": {16: (1, 0, ("p1",)), 32: (2, 1, ("p2", "p2@k1", "p3"))},
        "num_iterations": {1: (2, 1, ("p1", "p2@k1", "p3")), 2: (1, 0, ("p2",))},
        "projection_dim": {32: (2, 1, ("p1", "p2", "p2@k1")), 64: (1, 0, ("p3",))},
        "patch_size": {2: (2, 1, ("p1", "p2", "p2@k1")), 4: (1, 0, ("p3",))},
    }


def test_staircases_per_value(hand: report.ReportData) -> None:
    """Each value's own front: p3 is dominated by p2@k1 among N=32, not among projection 64."""
    stairs = {name: {v: d.front.trial_ids for v, d in values(hand, name).items()}
              for name in PERCEIVER}  # fmt: skip
    assert stairs == {
        "num_latents": {16: ("p1",), 32: ("p2@k1", "p2")},
        "num_iterations": {1: ("p1", "p2@k1"), 2: ("p2",)},
        "projection_dim": {32: ("p1", "p2@k1", "p2"), 64: ("p3",)},
        "patch_size": {2: ("p1", "p2@k1", "p2"), 4: ("p3",)},
    }
    assert values(hand, "num_latents")[32].front.values == ((0.85, 20.0), (0.90, 40.0))


def test_best_accuracy_per_value_at_matched_levels(hand: report.ReportData) -> None:
    fd = hand.which["perceiver"].dimensions
    assert fd is not None
    # the costs of the perceiver front's points (p1, p2@k1, p2); p2 is also the dearest
    assert fd.front.trial_ids == ("p1", "p2@k1", "p2")
    assert fd.levels == (10.0, 20.0, 40.0) and fd.dearest == 40.0
    best = {name: {v: d.best for v, d in values(hand, name).items()} for name in PERCEIVER}
    assert best == {
        "num_latents": {16: (0.80, 0.80, 0.80), 32: (None, 0.85, 0.90)},
        "num_iterations": {1: (0.80, 0.85, 0.85), 2: (None, None, 0.90)},
        "projection_dim": {32: (0.80, 0.85, 0.90), 64: (None, None, 0.82)},
        "patch_size": {2: (0.80, 0.85, 0.90), 4: (None, None, 0.82)},
    }
    assert values(hand, "num_latents")[32].best_ids == (None, "p2@k1", "p2")


def test_matched_levels_add_the_dearest_point_and_thin_a_long_front() -> None:
    objs = pareto.as_objectives({"val_accuracy": "max", "flops": "min"})
    long = [row(f"t{i}", "vit", 2.0**i, 0.5 + i / 100) for i in range(12)]
    front = pareto.pareto_front(long, objs)
    assert len(front) == 12
    assert matched_levels(front, "flops", 2.0**11) == (1.0, 8.0, 64.0, 256.0, 2048.0)
    assert matched_levels(front, "flops", 5000.0) == (1.0, 8.0, 64.0, 256.0, 2048.0, 5000.0)


def test_recommendation_table_by_hand(hand: report.ReportData) -> None:
    tables = hand.which["perceiver"].recommendations
    assert [t.cost_key for t in tables] == ["flops", "params", "latency_ms"]  # FLOPs first
    flops = tables[0]
    assert flops.baselines == ("vit", "mixer")
    got = [(r.level, r.trial_id, r.accuracy, r.test_accuracy, r.baseline_family,
            r.baseline_row and r.baseline_row["trial_id"], r.baseline_accuracy)
           for r in flops.rows]  # fmt: skip
    assert got == [
        (10.0, "p1", 0.80, 0.79, None, None, None),  # no baseline that cheap
        (20.0, "p2@k1", 0.85, 0.84, "vit", "v1", 0.83),
        (40.0, "p2", 0.90, 0.89, "vit", "v2", 0.87),  # vit 0.87 beats mixer 0.86
    ]
    assert [r.gap for r in flops.rows] == [None, pytest.approx(0.02), pytest.approx(0.03)]
    # params and latency are FLOPs scaled here: the same picks at scaled levels
    assert [r.trial_id for r in tables[1].rows] == ["p1", "p2@k1", "p2"]
    assert [r.level for r in tables[2].rows] == [1.0, 2.0, 4.0]


def test_recommendation_for_a_baseline_family(hand: report.ReportData) -> None:
    """Not Perceiver-only: ViT's table has the Perceiver among its baselines."""
    (flops, *_) = hand.which["vit"].recommendations
    assert flops.baselines == ("perceiver", "mixer")
    got = [(r.trial_id, r.baseline_family, r.baseline_accuracy) for r in flops.rows]
    assert got == [("v1", "perceiver", 0.80), ("v2", "mixer", 0.86)]
    assert [r.gap for r in flops.rows] == [pytest.approx(0.03), pytest.approx(0.01)]


def test_anytime_point_is_its_own_front_point(hand: report.ReportData) -> None:
    which = hand.which["perceiver"]
    assert which.anytime == {"p2@k1": AnytimeOrigin("p2", 1, 2)}
    assert "p2@k1" in hand.front.views[0].fronts.by_family["perceiver"].trial_ids
    assert which.dimensions is not None and "p2@k1" in which.dimensions.front.trial_ids


def test_dimension_data_reuses_the_computed_fronts(hand: report.ReportData) -> None:
    fd = hand.which["perceiver"].dimensions
    view = hand.front.views[0]
    assert fd is not None and view.cost_key == fd.cost_key == "flops"
    assert fd.front is view.fronts.by_family["perceiver"]
    assert fd.points == tuple(view.points("perceiver"))


def test_unrecorded_dimension_is_left_out() -> None:
    others = [r for r in ROWS if r["family"] != "perceiver"]
    rows = (*others, row("q1", "perceiver", 10, 0.8, hp={"num_latents": 16}))
    data = report.compute_report_data(hand_results(rows), [], dimensions=DIMENSIONS)
    fd = data.which["perceiver"].dimensions
    assert fd is not None
    assert [d.name for d in fd.dimensions] == ["num_latents"]
    assert fd.unrecorded == ("num_iterations", "projection_dim", "patch_size")


def test_spaces_dimensions_are_model_hyperparameters() -> None:
    import models
    from spaces import DIMENSIONS as NAMED

    assert set(NAMED) == set(models.FAMILIES)
    assert NAMED["perceiver"] == PERCEIVER
    for family, names in NAMED.items():
        assert set(names) <= set(models.default_hparams(family)), family

"""Tests for search/pareto/: dominance properties, exact hypervolume, histories, matched cost."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search import pareto
from search.pareto import Objective

settings.register_profile("paretotune", max_examples=60, deadline=None)
settings.load_profile("paretotune")

ACC_FLOPS = {"val_accuracy": "max", "flops": "min"}


# ---------------------------------------------------------------------------------------------
# helpers


def _dominates(a: np.ndarray, b: np.ndarray, directions: list[str]) -> bool:
    s = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    a, b = a * s, b * s
    return bool(np.all(a <= b) and np.any(a < b))


def _hv_inclusion_exclusion(points: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the union of boxes [p, ref] (minimisation) by inclusion-exclusion."""
    pts = [p for p in points if np.all(p < ref)]
    total = 0.0
    for r in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, r):
            corner = np.max(np.array(subset), axis=0)
            total += (-1) ** (r + 1) * float(np.prod(ref - corner))
    return total


def _row(
    i: int,
    family: str,
    acc: float | None,
    flops: float | None,
    status: str = "COMPLETE",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "trial_id": f"t{i:03d}",
        "number": i,
        "family": family,
        "status": status,
        "val_accuracy": acc,
        "flops": flops,
        "finished_at": 1000.0 + i,
        "train_time_s": 10.0,
        **extra,
    }


directions_st = st.lists(st.sampled_from(["max", "min"]), min_size=2, max_size=3)


@st.composite
def point_sets(draw: Any, max_size: int = 25) -> tuple[np.ndarray, list[str]]:
    dirs = draw(directions_st)
    n = draw(st.integers(0, max_size))
    # small integer grid: many ties and duplicates, the hard cases for dominance
    vals = draw(
        st.lists(
            st.lists(st.integers(0, 6), min_size=len(dirs), max_size=len(dirs)),
            min_size=n,
            max_size=n,
        )
    )
    return np.array(vals, dtype=float).reshape(n, len(dirs)), dirs


# ---------------------------------------------------------------------------------------------
# non-dominated sets


@given(point_sets())
def test_no_member_dominated_and_every_non_member_dominated_by_a_member(
    data: tuple[np.ndarray, list[str]],
) -> None:
    pts, dirs = data
    mask = pareto.non_dominated_mask(pts, dirs)
    members = pts[mask]
    for i, p in enumerate(pts):
        if mask[i]:
            assert not any(_dominates(q, p, dirs) for q in pts)
        else:
            assert any(_dominates(m, p, dirs) for m in members)


@given(point_sets(), st.randoms(use_true_random=False))
def test_mask_does_not_depend_on_order(
    data: tuple[np.ndarray, list[str]], rnd: random.Random
) -> None:
    pts, dirs = data
    perm = list(range(len(pts)))
    rnd.shuffle(perm)
    mask = pareto.non_dominated_mask(pts, dirs)
    mask_perm = pareto.non_dominated_mask(pts[perm], dirs) if len(pts) else mask
    assert list(mask_perm) == [mask[i] for i in perm]


def test_duplicates_are_all_on_the_front() -> None:
    pts = [[0.9, 10.0], [0.9, 10.0], [0.8, 20.0]]
    assert list(pareto.non_dominated_mask(pts, ["max", "min"])) == [True, True, False]


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="direction"):
        pareto.non_dominated_mask([[1.0, 2.0]], ["max", "up"])
    with pytest.raises(ValueError, match="finite"):
        pareto.non_dominated_mask([[1.0, math.nan]], ["max", "min"])
    with pytest.raises(ValueError, match="direction"):
        Objective("x", "down")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# fronts from rows


def _rows() -> list[dict[str, Any]]:
    return [
        _row(0, "vit", 0.80, 1e6),
        _row(1, "vit", 0.85, 4e6),
        _row(2, "vit", 0.83, 5e6),  # dominated by t001
        _row(3, "mixer", 0.90, 8e6, status="STOPPED"),  # a partial budget: never on a front
        _row(9, "mixer", 0.90, 9e6),
        _row(4, "mixer", 0.70, 5e5),
        _row(5, "mixer", 0.99, 2e5, status="FAILED"),  # not a measurement
        _row(6, "vit", None, 3e5, status="INFEASIBLE"),
        _row(7, "vit", math.nan, 1e5),  # COMPLETE but no accuracy
        _row(8, "perceiver", 0.88, 1e7),
    ]


def test_fronts_per_family_and_overall() -> None:
    fr = pareto.fronts(_rows(), ACC_FLOPS)
    assert fr.objectives == (Objective("val_accuracy", "max"), Objective("flops", "min"))
    assert set(fr.by_family) == {"vit", "mixer", "perceiver"}
    assert fr.by_family["vit"].trial_ids == ("t000", "t001")
    assert fr.by_family["mixer"].trial_ids == ("t004", "t009")
    assert fr.by_family["perceiver"].trial_ids == ("t008",)
    # sorted by cost ascending: a step line from cheap to accurate
    assert fr.overall.trial_ids == ("t004", "t000", "t001", "t009")
    assert fr.overall.column("flops") == (5e5, 1e6, 4e6, 9e6)
    assert {r["trial_id"] for r in fr.eligible} == {f"t00{i}" for i in (0, 1, 2, 4, 8, 9)}
    assert pareto.pareto_front(_rows(), ACC_FLOPS, family="vit") == fr.by_family["vit"]


@given(st.randoms(use_true_random=False))
def test_fronts_do_not_depend_on_row_order(rnd: random.Random) -> None:
    rows = _rows()
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    a, b = pareto.fronts(rows, ACC_FLOPS), pareto.fronts(shuffled, ACC_FLOPS)
    assert a.overall == b.overall
    assert a.by_family == b.by_family


def test_three_objective_front() -> None:
    rows = [
        _row(i, "vit", a, f, latency_ms=lat)
        for i, (a, f, lat) in enumerate(
            [(0.9, 10, 5.0), (0.9, 10, 4.0), (0.8, 5, 9.0), (0.7, 6, 1.0), (0.6, 7, 2.0)]
        )
    ]
    fr = pareto.fronts(rows, {"val_accuracy": "max", "flops": "min", "latency_ms": "min"})
    assert set(fr.overall.trial_ids) == {"t001", "t002", "t003"}


# ---------------------------------------------------------------------------------------------
# hypervolume


def test_hypervolume_2d_hand_computed() -> None:
    # accuracy max, flops min, reference (0, 10):
    # (0.5, 2) covers [2,10] x [0,0.5] = 4; (0.8, 6) adds [6,10] x [0.5,0.8] = 1.2
    pts = [[0.5, 2.0], [0.8, 6.0], [0.4, 8.0]]
    assert pareto.hypervolume(pts, [0.0, 10.0], ["max", "min"]) == pytest.approx(5.2)
    # in log10 cost: reference 100, so (0.5, 10) covers 1 decade x 0.5, (0.8, 100) nothing
    assert pareto.hypervolume(
        [[0.5, 10.0], [0.8, 100.0]], [0.0, 100.0], ["max", "min"], log_scale=[False, True]
    ) == pytest.approx(0.5)
    assert pareto.hypervolume(np.empty((0, 2)), [0.0, 1.0], ["max", "min"]) == 0.0


def test_hypervolume_3d_hand_computed() -> None:
    ref = [4.0, 4.0, 4.0]
    mins = ["min"] * 3
    assert pareto.hypervolume([[1, 1, 1]], ref, mins) == pytest.approx(27.0)
    # two boxes 3x3x1 (z in [3,4], from (1,1,3)) and 1x1x3 (x,y in [3,4], from (3,3,1)),
    # intersection [3,4]^3 = 1:  9 + 3 - 1 = 11
    assert pareto.hypervolume([[1, 1, 3], [3, 3, 1]], ref, mins) == pytest.approx(11.0)
    # L-shapes: (0,2,0) -> 4*2*4 = 32, (2,0,2) -> 2*4*2 = 16, overlap [2,4]x[2,4]x[2,4] = 8
    assert pareto.hypervolume([[0, 2, 0], [2, 0, 2]], ref, mins) == pytest.approx(40.0)
    # mixed directions: accuracy max with reference 0
    assert pareto.hypervolume(
        [[0.5, 1, 1]], [0.0, 2.0, 2.0], ["max", "min", "min"]
    ) == pytest.approx(0.5)


@given(point_sets(max_size=8))
def test_hypervolume_equals_inclusion_exclusion(data: tuple[np.ndarray, list[str]]) -> None:
    pts, dirs = data
    ref = np.array([-1.0 if d == "max" else 7.0 for d in dirs])
    signs = np.array([-1.0 if d == "max" else 1.0 for d in dirs])
    expected = _hv_inclusion_exclusion(pts * signs, ref * signs) if len(pts) else 0.0
    assert pareto.hypervolume(pts, ref, dirs) == pytest.approx(expected, abs=1e-9)


@given(point_sets(), st.data())
def test_hypervolume_never_falls_when_points_are_added(
    a: tuple[np.ndarray, list[str]], data: st.DataObject
) -> None:
    pts, dirs = a
    ref = [-1.0 if d == "max" else 7.0 for d in dirs]
    hv = 0.0
    for i in range(len(pts)):  # one at a time
        now = pareto.hypervolume(pts[: i + 1], ref, dirs)
        assert now >= hv - 1e-12
        hv = now
    extra = data.draw(
        st.lists(st.lists(st.integers(-2, 8), min_size=len(dirs), max_size=len(dirs)), max_size=10)
    )
    if extra:
        more = np.vstack([pts, np.array(extra, dtype=float)])
        assert pareto.hypervolume(more, ref, dirs) >= hv - 1e-12


@given(point_sets(), st.randoms(use_true_random=False))
def test_hypervolume_does_not_depend_on_order(
    data: tuple[np.ndarray, list[str]], rnd: random.Random
) -> None:
    pts, dirs = data
    perm = list(range(len(pts)))
    rnd.shuffle(perm)
    ref = [-1.0 if d == "max" else 7.0 for d in dirs]
    assert pareto.hypervolume(pts[perm] if len(pts) else pts, ref, dirs) == pytest.approx(
        pareto.hypervolume(pts, ref, dirs)
    )


def test_points_outside_reference_add_nothing() -> None:
    assert pareto.hypervolume([[0.5, 20.0]], [0.0, 10.0], ["max", "min"]) == 0.0
    with pytest.raises(ValueError, match="log"):
        pareto.hypervolume([[0.5, 0.0]], [0.0, 10.0], ["max", "min"], log_scale=[False, True])


def test_default_reference() -> None:
    ref = pareto.default_reference(_rows(), ACC_FLOPS)
    assert ref.point == (0.0, pytest.approx(1.1e7))
    assert ref.log_scale == (False, True)
    assert "log10(flops)" in ref.describe()
    # signed "max" objective and non-positive cost: linear, 10 % beyond the worst value
    rows = [_row(0, "a", -1.0, 0.0), _row(1, "a", 1.0, 10.0)]
    ref = pareto.default_reference(rows, ACC_FLOPS)
    assert ref.point == (pytest.approx(-1.2), pytest.approx(11.0))
    assert ref.log_scale == (False, False)
    empty = pareto.default_reference([], ACC_FLOPS)
    assert empty.point == (0.0, 1.0)


def test_front_hypervolume_matches_hypervolume_of_all_points() -> None:
    rows = _rows()
    fr = pareto.fronts(rows, ACC_FLOPS)
    ref = pareto.default_reference(rows, ACC_FLOPS)
    pts = [(r["val_accuracy"], r["flops"]) for r in fr.eligible]
    assert pareto.front_hypervolume(fr.overall, ref) == pytest.approx(
        pareto.hypervolume(pts, ref.point, ["max", "min"], log_scale=ref.log_scale)
    )


def test_hypervolume_history() -> None:
    rows = _rows()
    random.Random(0).shuffle(rows)
    hist = pareto.hypervolume_history(rows, ACC_FLOPS)
    assert hist.trial_ids == tuple(f"t{i:03d}" for i in range(10))  # ordered by finished_at
    assert hist.compute_time_s == tuple(10.0 * (i + 1) for i in range(10))
    assert all(b >= a for a, b in zip(hist.hypervolume, hist.hypervolume[1:]))
    fr = pareto.fronts(rows, ACC_FLOPS)
    assert hist.hypervolume[-1] == pytest.approx(
        pareto.front_hypervolume(fr.overall, hist.reference)
    )
    # t002 is dominated, t005..t007 are not measurements: the curve stays flat there
    assert hist.hypervolume[2] == hist.hypervolume[1]
    assert hist.hypervolume[5] == hist.hypervolume[6] == hist.hypervolume[7] == hist.hypervolume[4]
    vit = pareto.hypervolume_history(rows, ACC_FLOPS, hist.reference, family="vit")
    assert vit.hypervolume[-1] == pytest.approx(
        pareto.front_hypervolume(fr.by_family["vit"], hist.reference)
    )
    assert vit.hypervolume[-1] <= hist.hypervolume[-1]


@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 1.0),
            st.floats(1e3, 1e9),
            st.sampled_from(["COMPLETE", "STOPPED", "FAILED"]),
        ),
        min_size=1,
        max_size=15,
    ),
    st.randoms(use_true_random=False),
)
def test_history_ends_at_front_hypervolume_whatever_the_input_order(
    data: list[tuple[float, float, str]], rnd: random.Random
) -> None:
    rows = [
        _row(i, "vit" if i % 2 else "mixer", a, f, status=s) for i, (a, f, s) in enumerate(data)
    ]
    ref = pareto.default_reference(rows, ACC_FLOPS)
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    h1 = pareto.hypervolume_history(rows, ACC_FLOPS, ref)
    h2 = pareto.hypervolume_history(shuffled, ACC_FLOPS, ref)
    assert h1 == h2
    assert all(b >= a - 1e-12 for a, b in zip(h1.hypervolume, h1.hypervolume[1:]))
    assert h1.hypervolume[-1] == pytest.approx(
        pareto.front_hypervolume(pareto.fronts(rows, ACC_FLOPS).overall, ref)
    )


# ---------------------------------------------------------------------------------------------
# accuracy at a matched cost


def test_accuracy_at_cost_is_a_step_function() -> None:
    fr = pareto.fronts(_rows(), ACC_FLOPS)
    vit = fr.by_family["vit"]
    assert pareto.accuracy_at_cost(vit, 5e5) is None
    assert pareto.accuracy_at_cost(vit, 1e6) == (0.80, "t000")
    assert pareto.accuracy_at_cost(vit, 3.9e6) == (0.80, "t000")
    assert pareto.accuracy_at_cost(vit, 4e6) == (0.85, "t001")
    assert pareto.accuracy_at_cost(vit, 1e12) == (0.85, "t001")
    m = pareto.matched_accuracy(fr.by_family, [5e5, 5e6, 1e7])
    assert m.costs == (5e5, 5e6, 1e7)
    assert m.accuracy == {
        "mixer": (0.70, 0.70, 0.90),
        "perceiver": (None, None, 0.88),
        "vit": (None, 0.85, 0.85),
    }
    assert m.trial_ids["mixer"] == ("t004", "t004", "t009")


@given(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(1.0, 1e6)), min_size=1, max_size=20),
    st.floats(1.0, 1e6),
)
def test_accuracy_at_cost_equals_brute_force_over_all_rows(
    data: list[tuple[float, float]], budget: float
) -> None:
    rows = [_row(i, "vit", a, f) for i, (a, f) in enumerate(data)]
    front = pareto.fronts(rows, ACC_FLOPS).by_family["vit"]
    affordable = [a for a, f in data if f <= budget]
    got = pareto.accuracy_at_cost(front, budget)
    assert (got[0] if got else None) == (max(affordable) if affordable else None)


def test_cost_levels() -> None:
    assert pareto.cost_levels(1.5e5, 1.2e6) == (1.5e5, 2e5, 5e5, 1e6, 1.2e6)
    assert pareto.cost_levels(1e6, 1e6) == (1e6,)
    with pytest.raises(ValueError):
        pareto.cost_levels(0.0, 1.0)


def test_pareto_is_plain_data() -> None:
    """search/pareto/ computes only: importing it loads no plotting library."""
    code = "import sys, search.pareto; print(sorted(m for m in sys.modules if 'plotly' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nondominated_ranks_fronts_duplicates_and_nan_last() -> None:
    pts = np.array(
        [
            [0.0, 5.0],  # 0: front 0
            [1.0, 3.0],  # 1: front 0
            [1.0, 3.0],  # 2: duplicate of 1, also front 0 (identical rows don't dominate)
            [3.0, 1.0],  # 3: front 0
            [2.0, 4.0],  # 4: dominated by 1 -> front 1
            [4.0, 4.0],  # 5: dominated by 4 -> front 2
            [5.0, 5.0],  # 6: dominated by 5 -> front 3
            [np.nan, 6.0],  # 7: NaN is worst: dominated by 6 -> front 4
            [np.nan, np.nan],  # 8: worst everywhere, dominated by 7 -> front 5
        ]
    )
    ranks = pareto.nondominated_ranks(pts)
    assert ranks.tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5]
    assert np.issubdtype(ranks.dtype, np.integer)
    assert np.isnan(pts[7, 0]), "the input is not modified"
    # With one NaN column the row is still on the front when it is best in another column.
    assert pareto.nondominated_ranks(np.array([[0.0, 1.0], [np.nan, 0.0]])).tolist() == [0, 0]
    assert pareto.nondominated_ranks(np.zeros((0, 2))).tolist() == []
    with pytest.raises(ValueError, match="2-D"):
        pareto.nondominated_ranks(np.zeros(3))


def test_the_front_mask_is_rank_zero_of_the_one_dominance_rule() -> None:
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 4, size=(40, 3)).astype(float)  # ties and duplicates on purpose
    dirs = ["max", "min", "min"]
    signed = pts * np.array([-1.0, 1.0, 1.0])
    mask = pareto.non_dominated_mask(pts, dirs)
    assert mask.tolist() == (pareto.nondominated_ranks(signed) == 0).tolist()
    for i in np.flatnonzero(~mask):  # each dominated point has a dominator on the front
        better = np.all(signed[mask] <= signed[i], axis=1) & np.any(
            signed[mask] < signed[i], axis=1
        )
        assert better.any()

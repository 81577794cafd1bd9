"""search.pareto.intervals: the Wilson interval of an accuracy."""

from __future__ import annotations

import pytest

from search.pareto.intervals import row_interval, wilson


def test_the_wilson_interval_matches_its_closed_form() -> None:
    acc, n, z = 0.86, 10_000, 1.959963984540054
    centre = (acc + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (acc * (1 - acc) / n + z * z / (4 * n * n)) ** 0.5
    assert wilson(acc, n) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_it_stays_inside_zero_and_one_where_the_normal_interval_does_not() -> None:
    low, high = wilson(1.0, 20) or (None, None)
    assert low is not None and 0.8 < low < 1.0 and high == pytest.approx(1.0)
    low, high = wilson(0.0, 20) or (None, None)
    assert low == pytest.approx(0.0) and 0.0 < high < 0.2


def test_a_smaller_evaluation_set_gives_a_wider_interval() -> None:
    width = {n: (lambda iv: iv[1] - iv[0])(wilson(0.9, n)) for n in (100, 1000, 10_000)}
    assert width[100] > width[1000] > width[10_000]


@pytest.mark.parametrize(("acc", "n"), [(None, 100), (0.9, 0), (0.9, None), (float("nan"), 50)])
def test_without_an_accuracy_or_a_set_size_there_is_no_interval(
    acc: float | None, n: int | None
) -> None:
    assert wilson(acc, n) is None


def test_a_rows_model_and_seed_intervals_stay_inside_zero_and_one() -> None:
    """A configuration near 100 % with a wide seed spread (digits: 216 val images, seeds
    1.5-2.5 points apart): the normal and t intervals are cut at 1, as an accuracy is."""
    modelled = {"val_accuracy": 0.995, "val_images": 216, "val_accuracy_family_seed_sd": 0.02}
    seeded = {"val_accuracy": 0.98, "val_accuracy_seeds": [1.0, 0.96]}
    for row in (modelled, seeded):
        low, high = row_interval(row, "val_accuracy") or (None, None)
        assert low is not None and 0.0 <= low < row["val_accuracy"] and high == 1.0

"""The report never ranks noise: a dimension value leads only when measured (3 configurations of
2 seeds or more) and clear of every other value's interval; the matched-cost headline names a
leader only when its interval is clear, and from more than one seed."""

from __future__ import annotations

from typing import Any

from _which_rows import DIMENSIONS, hand_results, perceiver, row

from search import report
from search.report.page import render_page


def _seeded(tid: str, n: int, flops: float, seeds: list[float], **extra: Any) -> dict[str, Any]:
    mean = sum(seeds) / len(seeds)
    return row(tid, "perceiver", flops, mean, **perceiver(n, 1, 32, 2),
               val_accuracy_seeds=seeds, val_images=6000, **extra)  # fmt: skip


def _latents(gap: float) -> report.ReportData:
    """Three seeded configurations per N (16 and 32) at matched costs, N=32 ``gap`` above."""
    rows = []
    for i, flops in enumerate((10.0, 20.0, 30.0)):
        base = 0.80 + 0.01 * i
        rows.append(_seeded(f"a{i}", 16, flops, [base - 0.002, base + 0.002]))
        rows.append(_seeded(f"b{i}", 32, flops, [base + gap - 0.002, base + gap + 0.002]))
    return report.compute_report_data(hand_results(tuple(rows)), [], dimensions=DIMENSIONS)


def _page(data: report.ReportData) -> str:
    return render_page(data, report.draw_figures(data))


def _dimension(data: report.ReportData, name: str) -> Any:
    fd = data.which["perceiver"].dimensions
    assert fd is not None
    return next(d for d in fd.dimensions if d.name == name)


def test_a_value_clear_of_the_others_interval_leads() -> None:
    dim = _dimension(_latents(0.10), "num_latents")
    assert all(v.measured for v in dim.values)
    assert {v.kind for v in dim.verdicts} == {"separated"}
    assert {v.leader for v in dim.verdicts} == {32}


def test_overlapping_intervals_are_not_separated() -> None:
    dim = _dimension(_latents(0.004), "num_latents")  # 0.4 points apart: the t intervals overlap
    assert {v.kind for v in dim.verdicts} == {"not separated"}
    page = _page(_latents(0.004))
    assert "not separated" in page and "leads</td>" not in page


def test_one_seed_per_configuration_is_not_measured_and_never_a_winner() -> None:
    rows = tuple(
        row(f"{n}-{i}", "perceiver", 10.0 * (i + 1), 0.80 + (0.10 if n == 32 else 0.0),
            **perceiver(n, 1, 32, 2), val_accuracy_low=0.79, val_accuracy_high=0.91)
        for n in (16, 32) for i in range(3)
    )  # fmt: skip
    data = report.compute_report_data(hand_results(rows), [], dimensions=DIMENSIONS)
    dim = _dimension(data, "num_latents")
    assert not any(v.measured for v in dim.values)
    assert {v.kind for v in dim.verdicts} == {"not measured"}
    assert "(not measured)" in _page(data)


def test_anytime_points_are_seeded_configurations_of_their_iteration_count_once_per_run() -> None:
    """Three seeded runs at 2 iterations, each read at 1 too (its anytime point, with each
    seed's accuracy): iterations 1 is measured by those three runs; for N = 16, which holds
    all six points, they are still three configurations, not six."""
    rows = []
    for i, flops in enumerate((10.0, 20.0, 30.0)):
        acc = 0.80 + 0.01 * i
        rows.append(_seeded(f"r{i}", 16, 2 * flops, [acc - 0.002, acc + 0.002]))
        rows[-1].update({f"hp.{k}": v for k, v in perceiver(16, 2, 32, 2)["hp"].items()})
        point = _seeded(f"r{i}@k1", 16, flops, [acc - 0.05, acc - 0.04],
                        anytime_of=f"r{i}", anytime_iterations=1, train_time_s=0.0)  # fmt: skip
        rows.append(point)
    data = report.compute_report_data(hand_results(tuple(rows)), [], dimensions=DIMENSIONS)
    iterations = {v.value: v for v in _dimension(data, "num_iterations").values}
    assert iterations[1].n_anytime == 3 and iterations[1].n_seeded == 3
    assert iterations[1].measured and iterations[2].measured
    assert {v.value: v.n_seeded for v in _dimension(data, "num_latents").values} == {16: 3}


def test_the_matched_cost_headline_names_no_winner_it_cannot_tell_apart() -> None:
    def headline(rows: tuple[dict[str, Any], ...]) -> str:
        page = _page(report.compute_report_data(hand_results(rows), []))
        start = page.index("For example, <b>at")
        return page[start : page.index("</p>", start)]

    interval = {"val_accuracy_low": 0.84, "val_accuracy_high": 0.88}
    close = (row("v", "vit", 10, 0.86, **interval), row("m", "mixer", 10, 0.85, **interval))
    assert "not separated" in headline(close)
    far = (
        row("v", "vit", 10, 0.95, val_accuracy_low=0.94, val_accuracy_high=0.96),
        row("m", "mixer", 10, 0.80, val_accuracy_low=0.79, val_accuracy_high=0.81),
    )
    assert "from one seed: no winner is named" in headline(far)
    seeded = (
        row("v", "vit", 10, 0.95, val_accuracy_seeds=[0.949, 0.951], val_images=6000),
        row("m", "mixer", 10, 0.80, val_accuracy_seeds=[0.799, 0.801], val_images=6000),
    )
    assert "vit leads" in headline(seeded)

"""search/report/inputs.py: the fixed fixture, ``load_results`` and a missing results folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from _report_helpers import FAMILIES, FIXTURE, fixture_generator

from search import report
from search.errors import UserError
from search.experiment import load_experiment


def test_fixture_is_reproducible(tmp_path: Path) -> None:
    """Regenerating the fixture (through the sweep's exporter) gives the committed bytes: the
    committed fixture cannot drift from what the product writes."""
    fixture_generator().write(tmp_path)
    names = ("experiment.yaml", "trials.csv", "trials.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name in names:
        assert (tmp_path / name).read_bytes() == (FIXTURE / name).read_bytes(), name


def test_fixture_experiment_loads() -> None:
    """The fixture's experiment.yaml is one a sweep writes and ``load_experiment`` accepts."""
    exp = load_experiment(str(FIXTURE / "experiment.yaml"))
    assert exp == fixture_generator().make_experiment()
    assert (FIXTURE / "experiment.yaml").read_text() == exp.to_yaml()
    assert (exp.name, exp.dataset.name, exp.dataset.image_size) == ("fixture-small", "digits", 16)
    assert exp.families == FAMILIES and exp.objectives == {"val_accuracy": "max", "flops": "min"}
    assert (exp.num_trials, exp.epochs, exp.budget.max_flops, exp.seed) == (22, 6, 3.0e8, 0)


def test_load_results(results: report.Results) -> None:
    assert results.name == "fixture-small"
    assert results.families == FAMILIES
    assert [o.name for o in results.objectives] == ["val_accuracy", "flops"]
    assert {r["status"] for r in results.rows} == {"COMPLETE", "STOPPED", "FAILED", "INFEASIBLE"}
    assert results.accuracy_key == "val_accuracy" and results.cost_key == "flops"


def test_missing_results_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"trials\.json"):
        report.write_report(tmp_path)

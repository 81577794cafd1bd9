"""search/report/inputs.py: the fixed fixture, ``load_results`` and a missing results folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _report_helpers import FAMILIES, FIXTURE

from search import report
from search.errors import UserError


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

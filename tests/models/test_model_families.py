"""``models.families`` names the families once, torch-free; ``models._registry`` has one
``ModelFamily`` record per name; no module of the project writes the list again."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import models
from models._config import ModelConfig
from models._registry import model_family

ROOT = Path(__file__).resolve().parents[2]
#: where the family names may be written: here, and nowhere else in these packages
SOURCE = ROOT / "models" / "families.py"
PACKAGES = ("models", "spaces", "search", "cluster", "benchmarks")


def test_the_names_load_without_torch() -> None:
    code = "import sys, models; print('torch' in sys.modules, models.FAMILIES)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False ('perceiver', 'vit', 'mixer', 'fnet', 'gmlp')"


def test_one_record_per_family_in_order() -> None:
    assert tuple(models.MODEL_FAMILIES) == models.FAMILIES
    for name, record in models.MODEL_FAMILIES.items():
        assert record.name == name == record.config.family
        assert issubclass(record.config, ModelConfig)
        assert callable(record.factory) and callable(record.estimate)
        assert model_family(name) is record
    with pytest.raises(ValueError, match=r"family='resnet': unknown model family; allowed: "):
        model_family("resnet")


def test_the_anytime_hyperparameter_is_an_integer_field_of_the_config() -> None:
    anytime = {n: r.anytime for n, r in models.MODEL_FAMILIES.items() if r.anytime}
    assert anytime == {"perceiver": "num_iterations"}
    for name, field in anytime.items():
        types = {f.name: f.type for f in dataclasses.fields(models.MODEL_FAMILIES[name].config)}
        assert types[field] in (int, "int"), (name, field)


def _family_lists(path: Path) -> list[str]:
    """Tuple, list and set literals holding two or more family names, as ``file:line``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = [
                e.value
                for e in node.elts
                if isinstance(e, ast.Constant) and e.value in models.FAMILIES
            ]
            if len(names) >= 2:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_repeats_the_family_list() -> None:
    assert _family_lists(SOURCE)  # the check finds the one list it allows
    repeats = [
        hit
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != SOURCE
        for hit in _family_lists(path)
    ]
    assert repeats == [], "derive these from models.FAMILIES or the family records"

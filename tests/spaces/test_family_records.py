"""``spaces.FAMILY_RECORDS``: one record per model family, extending its ``models`` record with
a space, named dimensions and anytime parameter that are real; the tables derive from them."""

from __future__ import annotations

import dataclasses

import pytest

import models
from models._config import ModelConfig
from spaces import ANYTIME_PARAM, DIMENSIONS, FAMILY_RECORDS, SPACES, parameter_names
from spaces.families import FamilyRecord, _record


def test_every_model_family_has_exactly_one_record() -> None:
    assert tuple(FAMILY_RECORDS) == models.FAMILIES
    for name, record in FAMILY_RECORDS.items():
        model = models.MODEL_FAMILIES[name]
        assert isinstance(record, FamilyRecord) and record.name == name
        for field in dataclasses.fields(model):
            assert getattr(record, field.name) is getattr(model, field.name), (name, field)


def test_each_space_is_its_own_module() -> None:
    modules = {name: r.space.__module__ for name, r in FAMILY_RECORDS.items()}
    assert modules == {name: f"spaces.{name}" for name in models.FAMILIES}


def test_dimensions_are_hyperparameters_of_the_config_and_parameters_of_the_space() -> None:
    for name, record in FAMILY_RECORDS.items():
        assert record.dimensions, name
        assert len(set(record.dimensions)) == len(record.dimensions), name
        assert set(record.dimensions) <= set(record.config.field_names()), name
        searched = parameter_names([name], image_size=32)
        assert {f"{name}.{d}" for d in record.dimensions} <= set(searched), name


def test_the_anytime_parameter_is_a_parameter_of_the_space() -> None:
    assert ANYTIME_PARAM == {"perceiver": "perceiver.num_iterations"}
    for name, record in FAMILY_RECORDS.items():
        if record.anytime_param is None:
            assert name not in ANYTIME_PARAM
            continue
        assert record.anytime_param in parameter_names([name], image_size=32), name


def test_the_tables_derive_from_the_records() -> None:
    assert SPACES == {n: r.space for n, r in FAMILY_RECORDS.items()}
    assert DIMENSIONS == {n: r.dimensions for n, r in FAMILY_RECORDS.items()}
    assert tuple(SPACES) == tuple(DIMENSIONS) == models.FAMILIES


def test_a_model_family_without_a_space_module_fails() -> None:
    @dataclasses.dataclass(frozen=True)
    class ResNetConfig(ModelConfig):
        family = "resnet"
        patch_size: int = 1

    model = dataclasses.replace(models.MODEL_FAMILIES["vit"], config=ResNetConfig)
    with pytest.raises(ModuleNotFoundError, match=r"spaces\.resnet"):
        _record(model)

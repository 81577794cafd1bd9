"""One ``FamilyRecord`` per model family: its ``models.ModelFamily`` record (name, config,
factory, cost estimator, anytime hyperparameter) with its search space and named dimensions.

The records are built by iterating ``models.MODEL_FAMILIES``: the space of family ``<name>``
is ``spaces/<name>.py`` (its ``space`` function and ``DIMENSIONS`` tuple), so a family added in
``models`` without a space module fails here, at import. ``spaces.SPACES``, ``DIMENSIONS`` and
``ANYTIME_PARAM`` derive from these records.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import optuna

from models import MODEL_FAMILIES, ModelFamily
from spaces._context import SpaceContext

__all__ = ["FAMILY_RECORDS", "FamilyRecord", "FamilySpace"]

#: ``space(trial, ctx) -> {model hparam: value}``: a family's model-hyperparameter space.
FamilySpace = Callable[[optuna.Trial, SpaceContext], dict[str, Any]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FamilyRecord(ModelFamily):
    """Everything known of one family: the model record's fields, then its space."""

    #: its model-hyperparameter space (``spaces/<name>.py``'s ``space``)
    space: FamilySpace
    #: the model hyperparameters (``hp.<name>`` in the results) the report's "Which <family>"
    #: section compares trials by, one value against another
    dimensions: tuple[str, ...]

    @property
    def anytime_param(self) -> str | None:
        """The space parameter an anytime trial evaluates at every value (``training.anytime``):
        the model's ``anytime`` hyperparameter under the family's prefix, or None."""
        return None if self.anytime is None else f"{self.name}.{self.anytime}"


def _record(model: ModelFamily) -> FamilyRecord:
    module = importlib.import_module(f"spaces.{model.name}")
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    return FamilyRecord(**fields, space=module.space, dimensions=tuple(module.DIMENSIONS))


#: family name -> its record, in the order of ``models.FAMILIES``.
FAMILY_RECORDS: dict[str, FamilyRecord] = {
    name: _record(model) for name, model in MODEL_FAMILIES.items()
}

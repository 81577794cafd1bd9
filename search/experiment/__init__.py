"""Experiment configuration: one frozen, validated object, loadable from YAML or a preset name.

``load_experiment`` validates everything, once: an unknown key, a wrong type or an impossible
value raises :class:`~search.errors.UserError` with one line naming the field, the value and
what is allowed. An :class:`Experiment` given to it without overrides comes back unchanged.

- :mod:`~search.experiment.schema`: the dataclasses (``Experiment`` and its sections);
- :mod:`~search.experiment.loading`: presets, strict YAML, ``--set`` overrides;
- :mod:`~search.experiment.coercion`: each field to its annotated type;
- :mod:`~search.experiment.validation`: ranges, dataset, storage, output location;
- :mod:`~search.experiment.feasibility`: the search space, by drawing proposals;
- :mod:`~search.experiment.limits`: the limits all of them share.
"""

from search.experiment.loading import (
    PRESETS_DIR,
    apply_overrides,
    experiment_from_dict,
    experiment_from_text,
    list_presets,
    load_experiment,
    with_output_dir,
)
from search.experiment.schema import (
    Budget,
    ConfirmConfig,
    DatasetConfig,
    Experiment,
    Resources,
    SchedulerConfig,
    TrainingConfig,
    redact,
)

__all__ = [
    "PRESETS_DIR",
    "Budget",
    "ConfirmConfig",
    "DatasetConfig",
    "Experiment",
    "Resources",
    "SchedulerConfig",
    "TrainingConfig",
    "apply_overrides",
    "experiment_from_dict",
    "experiment_from_text",
    "list_presets",
    "load_experiment",
    "redact",
    "with_output_dir",
]

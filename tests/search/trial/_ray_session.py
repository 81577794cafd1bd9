"""The Ray instance a trial test module starts (one per module).

Its workers build DeepSpeed's CPU shared-memory op into a private cache under ``.pytest_cache``:
``~/.cache/torch_extensions`` is shared with every other process on the machine, and a process
that finds ninja 1.11 on PATH and one that finds the venv's ninja 1.13 rebuild each other's copy
(about a minute each time on two cores).
"""

from __future__ import annotations

import pytest
import ray


def start_ray(request: pytest.FixtureRequest, **resources: int) -> None:
    """``ray.init`` with ``resources`` (``num_cpus``, ``num_gpus``), no dashboard, workers'
    output kept out of the test log, and the private op cache."""
    extensions = request.config.cache.mkdir("torch_extensions")
    ray.init(
        **resources,  # type: ignore[arg-type]
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"TORCH_EXTENSIONS_DIR": str(extensions)}},
    )

"""The Ray instance a trial test module starts (one per module).

Its workers build DeepSpeed's CPU shared-memory op into the run's private cache
(``TORCH_EXTENSIONS_DIR``, set by ``tests/conftest.py``; workers inherit the environment).
"""

from __future__ import annotations

import ray


def start_ray(**resources: int) -> None:
    """``ray.init`` with ``resources`` (``num_cpus``, ``num_gpus``), no dashboard, and workers'
    output kept out of the test log."""
    ray.init(
        **resources,  # type: ignore[arg-type]
        include_dashboard=False,
        log_to_driver=False,
    )

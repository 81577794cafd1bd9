"""What every test process shares: one private cache for DeepSpeed's CPU ops.

DeepSpeed builds its CPU shared-memory op on first use (about a minute on two cores) into
``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``. That folder is shared with
every other process on the machine, and a process that finds ninja 1.11 on PATH and one that
finds the venv's ninja 1.13 rebuild each other's copy. So the whole run, its subprocesses and
Ray workers included (they inherit the environment), builds it once, under ``.pytest_cache``.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Point ``TORCH_EXTENSIONS_DIR`` at the run's cache (unless set, or the cache is off)."""
    cache = getattr(config, "cache", None)
    if cache is not None and "TORCH_EXTENSIONS_DIR" not in os.environ:
        os.environ["TORCH_EXTENSIONS_DIR"] = str(cache.mkdir("torch_extensions"))

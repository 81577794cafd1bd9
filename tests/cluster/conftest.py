"""Fixtures for the cluster tests: local Ray clusters started with ``ray start`` and stopped
by PID in finalizers (never ``ray stop``, which would hit other people's Ray processes), and
an environment without the user's own Ray token."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.local import LocalCluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ``~/.ray/auth_token`` and no Ray auth variables in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in (
        "RAY_AUTH_MODE",
        "RAY_AUTH_TOKEN",
        "RAY_AUTH_TOKEN_PATH",
        "RAY_ADDRESS",
        "RAY_API_SERVER_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="module")
def ray_head() -> Iterator[LocalCluster]:
    """One head (2 CPUs, token auth, dashboard on 127.0.0.1) shared by a module's tests."""
    cluster = LocalCluster(num_cpus=2)
    try:
        cluster.start_head()
        yield cluster
    finally:
        cluster.stop()
        leftover = cluster.pids()
        assert not leftover, f"Ray processes left running: {sorted(leftover)}"


@pytest.fixture
def two_node_cluster() -> Iterator[LocalCluster]:
    """A head and one worker node, 1 CPU each: trials land on both; the test may remove the
    worker (``cluster.remove_worker(cluster.workers[0])``) mid-sweep."""
    cluster = LocalCluster(num_cpus=1)
    try:
        cluster.start_head()
        cluster.add_worker()
        cluster.wait_for_nodes(2)
        yield cluster
    finally:
        cluster.stop()
        leftover = cluster.pids()
        assert not leftover, f"Ray processes left running: {sorted(leftover)}"


@pytest.fixture
def client_env(isolated_home: Path) -> Callable[[LocalCluster], dict[str, str]]:
    """Environment for a ``paretotune`` client process of a cluster: its token in
    ``RAY_AUTH_TOKEN``, the isolated HOME, this interpreter first on PATH."""

    def make(cluster: LocalCluster) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(cluster.client_env())
        env["HOME"] = str(isolated_home)
        env["PYTHONPATH"] = str(REPO)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    return make

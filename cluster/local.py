"""A Ray cluster on this machine, started with ``ray start`` and stopped by PID.

Used by the tests (a head with token auth, then a second node that can be removed mid-sweep)
and handy for trying ``paretotune submit`` locally. Every process the cluster starts carries a
marker in its environment and lives under a private ``--temp-dir``; :meth:`LocalCluster.stop`
ends exactly those processes (and their children), never other people's Ray processes, which
is why it does not call ``ray stop`` (that stops every Ray process of the user on the machine).

All ports are picked free, so several local clusters (and other people's) can coexist; the
dashboard binds to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LocalCluster",
    "LocalNode",
    "free_port",
    "local_cluster",
    "main",
    "processes_with_marker",
    "stop_pids",
    "wait_for_nodes",
]

MARKER_ENV = "PARETOTUNE_LOCAL_CLUSTER"
_RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _parent_of(pid: int) -> int | None:
    stat = _read_proc(pid, "stat").decode(errors="replace")
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after it.
    _, _, rest = stat.rpartition(")")
    parts = rest.split()
    return int(parts[1]) if len(parts) > 1 else None


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def processes_with_marker(marker: str, temp_dir: str | None = None) -> set[int]:
    """PIDs whose environment holds ``MARKER_ENV=marker`` or whose command line names
    ``temp_dir``, plus all their descendants."""
    env_needle = f"{MARKER_ENV}={marker}".encode()
    dir_needle = temp_dir.encode() if temp_dir else None
    found: set[int] = set()
    parents: dict[int, int | None] = {}
    me = os.getpid()
    for pid in _all_pids():
        if pid == me:
            continue
        parents[pid] = _parent_of(pid)
        environ = _read_proc(pid, "environ").split(b"\0")
        if env_needle in environ or (dir_needle and dir_needle in _read_proc(pid, "cmdline")):
            found.add(pid)
    changed = True
    while changed:  # add descendants (a raylet's workers may have rewritten their cmdline)
        changed = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def _alive(pid: int) -> bool:
    stat = _read_proc(pid, "stat").decode(errors="replace")
    if not stat:
        return False
    _, _, rest = stat.rpartition(")")
    return not rest.split()[:1] == ["Z"]


def stop_pids(pids: set[int], *, grace_s: float = 10.0) -> set[int]:
    """SIGTERM ``pids``, wait up to ``grace_s``, SIGKILL the rest. Returns the PIDs killed hard."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    remaining = {p for p in pids if _alive(p)}
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = {p for p in remaining if _alive(p)}
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return remaining


@dataclass
class LocalNode:
    """One ``ray start`` node: its marker (in every process's environment) and its PIDs."""

    name: str
    marker: str
    temp_dir: str
    pids: set[int] = field(default_factory=set)

    def refresh(self) -> set[int]:
        """Re-scan for this node's processes (workers come and go)."""
        self.pids |= processes_with_marker(self.marker, self.temp_dir)
        self.pids = {p for p in self.pids if _alive(p)}
        return self.pids

    def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop every process of this node (and only those)."""
        for _ in range(3):  # a dying raylet may still spawn or reparent a child: re-scan
            pids = self.refresh()
            if not pids:
                return
            stop_pids(pids, grace_s=grace_s)
        self.refresh()


class LocalCluster:
    """A head (token auth on, dashboard on 127.0.0.1) plus optional worker nodes.

    ``token`` is handed to the processes as ``RAY_AUTH_TOKEN`` (never written to
    ``~/.ray/auth_token``, which belongs to the user). Use as a context manager or call
    :meth:`stop`.
    """

    def __init__(
        self,
        *,
        num_cpus: int = 2,
        token: str | None = None,
        object_store_memory: int = 100 * 1024 * 1024,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.num_cpus = num_cpus
        self.token = token if token is not None else uuid.uuid4().hex + uuid.uuid4().hex
        self.object_store_memory = object_store_memory
        self.extra_env = dict(env or {})
        self.temp_root = tempfile.mkdtemp(prefix="ptr-")  # short: Ray's socket paths are limited
        self.head: LocalNode | None = None
        self.workers: list[LocalNode] = []
        self.gcs_port = 0
        self.dashboard_port = 0

    # ---- addresses -------------------------------------------------------------------------
    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def client_env(self) -> dict[str, str]:
        """Environment for a client process (``paretotune submit``, a driver) of this cluster."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    # ---- lifecycle -------------------------------------------------------------------------
    def _env(self, marker: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        # `python` in a job's entrypoint is this interpreter (the project's environment)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(self.extra_env)
        env.update(self.client_env())
        env[MARKER_ENV] = marker
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        return env

    def _ports(self) -> list[str]:
        ports = {
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--runtime-env-agent-port": free_port(),
            "--metrics-export-port": free_port(),
            # 0/0: workers bind to ports the OS picks (Ray's default range is shared by everyone)
            "--min-worker-port": 0,
            "--max-worker-port": 0,
        }
        return [f"{k}={v}" for k, v in ports.items()]

    def _start(self, name: str, args: list[str], *, timeout_s: float) -> LocalNode:
        marker = f"{name}-{uuid.uuid4().hex[:12]}"
        temp_dir = os.path.join(self.temp_root, name)
        os.makedirs(temp_dir, exist_ok=True)
        node = LocalNode(name=name, marker=marker, temp_dir=temp_dir)
        cmd = [
            _RAY,
            "start",
            *args,
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            f"--object-store-memory={self.object_store_memory}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
            *self._ports(),
        ]
        try:
            result = subprocess.run(
                cmd, env=self._env(marker), capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            node.stop()
            raise RuntimeError(f"`ray start` for {name} timed out after {timeout_s:.0f}s") from None
        node.refresh()
        if result.returncode != 0:
            node.stop()
            tail = (result.stderr or result.stdout)[-2000:]
            raise RuntimeError(f"`ray start` for {name} failed ({result.returncode}):\n{tail}")
        return node

    def start_head(self, *, timeout_s: float = 120.0) -> LocalCluster:
        """Start the head: GCS, raylet, dashboard (Jobs API) on 127.0.0.1, token auth on."""
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.head = self._start(
            "head",
            [
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={self.gcs_port}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
                "--include-dashboard=true",
            ],
            timeout_s=timeout_s,
        )
        self.wait_for_dashboard(timeout_s=timeout_s)
        return self

    def add_worker(self, *, timeout_s: float = 120.0) -> LocalNode:
        """Start one more node that joins the head."""
        if self.head is None:
            raise RuntimeError("start the head first")
        node = self._start(
            f"worker{len(self.workers) + 1}",
            [f"--address={self.gcs_address}", "--node-ip-address=127.0.0.1"],
            timeout_s=timeout_s,
        )
        self.workers.append(node)
        return node

    def remove_worker(self, node: LocalNode) -> None:
        """Take a worker node away (its processes are stopped, as if the machine died)."""
        node.stop(grace_s=2.0)
        self.workers.remove(node)

    def stop(self) -> None:
        """Stop every process this cluster started (workers first) and remove its temp dir."""
        for node in list(self.workers):
            node.stop()
        self.workers.clear()
        if self.head is not None:
            self.head.stop()
        shutil.rmtree(self.temp_root, ignore_errors=True)

    def pids(self) -> set[int]:
        """All live PIDs of this cluster's processes."""
        nodes = ([self.head] if self.head else []) + self.workers
        return set().union(*(n.refresh() for n in nodes)) if nodes else set()

    def __enter__(self) -> LocalCluster:
        if self.head is None:
            self.start_head()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- waiting ---------------------------------------------------------------------------
    def wait_for_dashboard(self, *, timeout_s: float = 60.0) -> None:
        """Wait until the Jobs API answers (the dashboard starts after ``ray start`` returns)."""
        import urllib.request

        deadline = time.monotonic() + timeout_s
        url = f"{self.dashboard_url}/api/authentication_mode"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dashboard at {self.dashboard_url} did not come up")
            time.sleep(0.5)

    def alive_nodes(self) -> int:
        """How many nodes the GCS counts as alive (asked in a separate driver process)."""
        code = (
            f"import ray; ray.init(address={self.gcs_address!r}, logging_level=40,"
            " log_to_driver=False);"
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        env = self._env(f"probe-{uuid.uuid4().hex[:8]}")
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"could not count nodes: {result.stderr[-1000:]}")
        return int(result.stdout.strip().splitlines()[-1])

    def wait_for_nodes(self, count: int, *, timeout_s: float = 120.0) -> None:
        """Wait until ``count`` nodes are alive."""
        deadline = time.monotonic() + timeout_s
        while self.alive_nodes() != count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"expected {count} alive nodes within {timeout_s:.0f}s")
            time.sleep(1.0)


@contextlib.contextmanager
def local_cluster(**kwargs: object) -> Iterator[LocalCluster]:
    """``with local_cluster(num_cpus=2) as c:`` a started head, stopped on exit."""
    cluster = LocalCluster(**kwargs)  # type: ignore[arg-type]
    try:
        yield cluster.start_head()
    finally:
        cluster.stop()


def wait_for_nodes(address: str, count: int, *, timeout_s: float = 300.0) -> int:
    """Connect to the cluster at ``address`` (GCS ``host:port``) and wait for ``count`` alive
    nodes; returns the count. Retries while the head is still starting."""
    import ray

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            break
        except (ConnectionError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)
    try:
        while True:
            alive = sum(1 for node in ray.nodes() if node["Alive"])
            if alive >= count or time.monotonic() > deadline:
                return alive
            time.sleep(2.0)
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m cluster.local wait-nodes HOST:PORT N [--timeout S]`` (used by the SLURM
    template): exit 0 once N nodes are alive, 1 on timeout."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cluster.local")
    sub = parser.add_subparsers(dest="command", required=True)
    wait = sub.add_parser("wait-nodes", help="wait until N nodes of the cluster are alive")
    wait.add_argument("address", help="the head's GCS address, HOST:PORT")
    wait.add_argument("count", type=int)
    wait.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    alive = wait_for_nodes(args.address, args.count, timeout_s=args.timeout)
    print(f"{alive} of {args.count} Ray nodes alive at {args.address}", file=sys.stderr)
    return 0 if alive >= args.count else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

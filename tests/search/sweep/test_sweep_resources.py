"""search.sweep.resources: what a trial asks of Ray against what the cluster can ever offer."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.errors import UserError
from search.experiment import Resources
from search.sweep import RayAddress, ResourcesUnavailable
from search.sweep import resources as res_mod
from search.sweep.resources import check_resources, shortfall

CPU2 = {"CPU": 2.0}
GPU_NODE = {"CPU": 8.0, "GPU": 1.0}
LOCAL, CLUSTER = RayAddress(None), RayAddress("10.0.0.5:6379")
CLI = (sys.executable, "-m", "search.cli")
GPU_QUARTER = ("--set", "resources.gpus_per_trial=0.25")


@pytest.mark.parametrize(
    ("asked", "nodes", "field", "has"),
    [
        (Resources(gpus_per_trial=0.25), [CPU2], "resources.gpus_per_trial=0.25", "no GPU"),
        (Resources(cpus_per_trial=4), [CPU2], "resources.cpus_per_trial=4", "2 CPUs"),
        (Resources(gpus_per_trial=2), [GPU_NODE, GPU_NODE], "gpus_per_trial=2", "1 on one node"),
        (
            Resources(cpus_per_trial=4, gpus_per_trial=1),
            [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 8.0}],
            "resources.cpus_per_trial=4 with gpus_per_trial=1: no one node has both",
            "10 CPUs (at most 8 on one node)",
        ),
        # the trial's driver holds 0.01 CPU beside its workers
        (Resources(workers_per_trial=2), [CPU2], "resources.workers_per_trial=2: room for 1 ", ""),
        (
            Resources(workers_per_trial=2, gpus_per_trial=1),
            [GPU_NODE],
            "resources.workers_per_trial=2: room for 1 of a trial's workers (1 CPU + 1 GPU each)",
            "8 CPUs and 1 GPU",
        ),
    ],
)
def test_a_trial_that_could_never_start_is_named(
    asked: Resources, nodes: list[dict[str, float]], field: str, has: str
) -> None:
    problem = shortfall(asked, nodes, local=True)
    assert problem is not None and field in problem and has in problem
    assert "this machine's Ray has" in problem and "--address" in problem
    with pytest.raises(UserError, match="could ever start"):
        check_resources(asked, LOCAL, nodes=lambda: nodes)


@pytest.mark.parametrize(
    ("asked", "nodes"),
    [
        (Resources(), [CPU2]),
        (Resources(gpus_per_trial=0.25), [GPU_NODE]),  # a fraction of a GPU on one node
        (Resources(workers_per_trial=2, cpus_per_trial=1), [{"CPU": 3.0}]),
        (Resources(workers_per_trial=2, cpus_per_trial=1), [CPU2, CPU2]),  # across nodes
        (Resources(workers_per_trial=2, gpus_per_trial=1), [GPU_NODE, GPU_NODE]),
    ],
)
def test_a_trial_that_fits_passes(asked: Resources, nodes: list[dict[str, float]]) -> None:
    assert shortfall(asked, nodes, local=True) is None
    check_resources(asked, LOCAL, nodes=lambda: nodes)


def test_a_cluster_is_waited_for_then_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(res_mod, "POLL_S", 0.05)
    lines: list[str] = []
    monkeypatch.setattr(res_mod.console, "say", lines.append)
    asked = Resources(gpus_per_trial=1, wait_for_resources_s=0.5)
    start = time.monotonic()
    with pytest.raises(ResourcesUnavailable, match=r"gave up after 0.5 s .*gpus_per_trial=1"):
        check_resources(asked, CLUSTER, nodes=lambda: [CPU2])
    assert time.monotonic() - start < 5
    assert len(lines) == 1 and "waiting up to 0.5 s" in lines[0] and "no GPU" in lines[0]
    # a node that joins while the run waits (an autoscaler's) is taken
    offers = iter([[CPU2], [CPU2], [CPU2, GPU_NODE]])
    lines.clear()
    check_resources(
        dataclasses.replace(asked, wait_for_resources_s=60), CLUSTER, nodes=lambda: next(offers)
    )
    assert "starting" in lines[-1]


def test_the_offer_is_rays_declared_resources() -> None:
    """Before Ray starts, the offer is what a private Ray would declare here; once Ray runs,
    its declared resources count (logical GPUs included), not what torch sees."""
    code = (
        "import ray\n"
        "from search.sweep.resources import _offered_nodes\n"
        "before = _offered_nodes()\n"
        "ray.init(include_dashboard=False, log_to_driver=False)\n"
        "started = _offered_nodes()\n"
        "ray.shutdown()\n"
        "ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)\n"
        "logical = _offered_nodes()\n"
        "ray.shutdown()\n"
        "keys = ('CPU', 'GPU')\n"
        "print([{k: n.get(k, 0.0) for k in keys} for n in (*before, *started, *logical)])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=Path.cwd()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    before, started, logical = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert before == started
    assert logical == {"CPU": 2.0, "GPU": 2.0}
    assert shortfall(Resources(gpus_per_trial=0.5), [logical], local=True) is None


def test_a_gpu_sweep_on_this_cpu_machine_is_refused_within_seconds(tmp_path: Path) -> None:
    """The README's own `--set resources.gpus_per_trial=0.25` on a machine without GPUs: one
    line, exit 2, nothing written, and no Ray started (it once waited for ever)."""
    start = time.monotonic()
    done = subprocess.run(
        [*CLI, "run", "smoke", "--output", str(tmp_path / "out"), *GPU_QUARTER],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},  # this machine has no GPU for Ray
    )
    took = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("paretotune: error: resources.gpus_per_trial=0.25: this ")
    assert "no GPU" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert took < 30, f"{took:.1f} s"
    assert list(tmp_path.iterdir()) == []

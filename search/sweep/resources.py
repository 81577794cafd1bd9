"""What a sweep asks of Ray against what the Ray cluster can ever offer, checked before the
first trial (Ray itself would wait for ever, warning every minute).

A trial asks for one bundle on one node (``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs),
or, with ``workers_per_trial`` > 1, a tiny trainable plus that many Ray Train workers
(:meth:`~search.experiment.Resources.trial_bundles`). The offer is the Ray nodes' declared
resources (what Ray schedules by, GPUs declared with ``ray.init(num_gpus=...)`` included), or,
before a private local Ray is started, what Ray would declare for this machine.

- A private local Ray (no address) is this machine: what it lacks now it never gets, so the
  sweep is refused at once (a UserError naming the field and what the machine has).
- A cluster (an address) can grow (an autoscaler, nodes joining): the run says what it waits
  for and gives up after ``resources.wait_for_resources_s`` (:class:`ResourcesUnavailable`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from search import console
from search.errors import UserError
from search.experiment import Resources
from search.sweep.ray_cluster import RayAddress

__all__ = ["ResourcesUnavailable", "check_resources", "shortfall"]

#: Seconds between two looks at a cluster that cannot offer a trial yet.
POLL_S = 5.0

Node = dict[str, float]


class ResourcesUnavailable(RuntimeError):
    """The cluster did not offer what one trial needs within ``wait_for_resources_s``."""


def check_resources(
    res: Resources, address: RayAddress, *, nodes: Callable[[], list[Node]] | None = None
) -> None:
    """Return once Ray can place one trial of ``res``; refuse (local) or wait, then give up
    (cluster). ``nodes``: where the offer is read (default: the running Ray, else this
    machine as a private Ray would declare it)."""
    offer = nodes or _offered_nodes
    problem = shortfall(res, offer(), local=address.value is None)
    if problem is None:
        return
    if address.value is None:
        raise UserError(problem)
    wait_s = res.wait_for_resources_s
    if wait_s > 0:
        console.say(
            f"[paretotune] waiting up to {wait_s:g} s (resources.wait_for_resources_s) for the "
            f"cluster to offer one trial: {problem}"
        )
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(POLL_S, left))
        problem = shortfall(res, offer(), local=False)
        if problem is None:
            console.say("[paretotune] the cluster offers what a trial needs; starting")
            return
    raise ResourcesUnavailable(
        f"gave up after {wait_s:g} s (resources.wait_for_resources_s): {problem}"
    )


def shortfall(res: Resources, nodes: Sequence[Node], *, local: bool) -> str | None:
    """Why no trial of ``res`` could start on ``nodes`` (one line naming the field, the value
    and what the nodes have), or None when one can."""
    trainable, workers = res.trial_bundles()
    has = _describe(nodes, local=local)
    fix = (
        "so no trial could ever start; lower it, or run on a cluster that has them (--address)"
        if local
        else "so no trial can start yet; lower it, or add nodes that have them"
    )
    if not workers:
        cpus, gpus = trainable["CPU"], trainable["GPU"]
        if not any(n.get("GPU", 0.0) >= gpus for n in nodes):
            return f"resources.gpus_per_trial={gpus:g}: {has}, {fix}"
        if not any(n.get("CPU", 0.0) >= cpus for n in nodes):
            return f"resources.cpus_per_trial={cpus:g}: {has}, {fix}"
        if not any(_fits(trainable, n) for n in nodes):
            return (
                f"resources.cpus_per_trial={cpus:g} with gpus_per_trial={gpus:g}: no one node "
                f"has both ({has}), {fix}"
            )
        return None
    fit = _worker_slots(trainable, workers[0], nodes)
    if fit >= len(workers):
        return None
    each = f"{workers[0]['CPU']:g} CPU" + (" + 1 GPU" if workers[0].get("GPU") else "")
    return (
        f"resources.workers_per_trial={len(workers)}: room for {fit} of a trial's workers "
        f"({each} each) beside its driver ({has}), {fix}"
    )


def _fits(bundle: Node, node: Node) -> bool:
    return all(node.get(k, 0.0) >= v for k, v in bundle.items() if v > 0)


def _worker_slots(trainable: Node, worker: Node, nodes: Sequence[Node]) -> int:
    """How many ``worker`` bundles fit beside one ``trainable`` bundle, at best."""

    def slots(node: Node) -> int:
        counts = [math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in worker.items() if v > 0]
        return max(0, min(counts, default=0))

    best = 0
    for i, home in enumerate(nodes):
        if not _fits(trainable, home):
            continue
        left = {k: home.get(k, 0.0) - trainable.get(k, 0.0) for k in {*home, *trainable}}
        best = max(best, slots(left) + sum(slots(n) for j, n in enumerate(nodes) if j != i))
    return best


def _describe(nodes: Sequence[Node], *, local: bool) -> str:
    """``this machine has 2 CPUs and no GPU`` / ``the cluster's 3 nodes have ...``."""

    def amount(key: str, name: str) -> str:
        total = sum(n.get(key, 0.0) for n in nodes)
        if not total:
            return f"no {name}"
        most = max(n.get(key, 0.0) for n in nodes)
        per_node = f" (at most {most:g} on one node)" if len(nodes) > 1 and most < total else ""
        return f"{total:g} {name}{'' if total == 1 else 's'}{per_node}"

    what = f"{amount('CPU', 'CPU')} and {amount('GPU', 'GPU')}"
    if local:
        return f"this machine's Ray has {what}"
    if len(nodes) == 1:
        return f"the cluster's one node has {what}"
    return f"the cluster's {len(nodes)} nodes have {what}"


def _offered_nodes() -> list[Node]:
    """The running Ray's live nodes' declared resources; without one, this machine's as a
    private local Ray would declare them (Ray's own detection: CPUs, GPUs, accelerators)."""
    import ray

    if ray.is_initialized():
        return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    from ray._private.resource_and_label_spec import ResourceAndLabelSpec

    return [dict(ResourceAndLabelSpec().resolve(is_head=True).to_resource_dict())]

"""Every check a sweep makes before its first trial, in one place: ``run``, ``resume`` and
``paretotune run --dry-run`` all go through :func:`preflight`, so a dry run refuses what the
run refuses, and neither writes anything until every check has passed.

In order: the output (``run``: a folder that can be created and written and holds no sweep, or
an object store's bucket and a prefix that holds none; ``resume``: the study it continues), the
storage (it opens within ``CONNECT_TIMEOUT_S``), the Ray address (its form, and that it
answers), the resources (Ray can place one trial: :mod:`search.sweep.resources`) and the data
(loaded as the trials will use it, and handed to the sweep).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search import storage as store
from search.experiment import Experiment
from search.sweep.guards import (
    check_resumable,
    check_writable_dir,
    refuse_existing_sweep,
    refuse_existing_uri,
)
from search.sweep.ray_cluster import RayAddress, ray_connection, resolve_ray_address
from search.sweep.resources import check_resources

if TYPE_CHECKING:
    from search.data import DatasetSplits

__all__ = ["Ready", "load_experiment_data", "preflight"]


@dataclass(frozen=True)
class Ready:
    """What the checks found: the Ray address (resolved and answering) and the dataset's splits
    (None in a dry run of a dataset that the run would download)."""

    address: RayAddress
    data: DatasetSplits | None


@contextlib.contextmanager
def preflight(
    exp: Experiment,
    address: str | RayAddress | None,
    *,
    resuming: bool = False,
    dry_run: bool = False,
) -> Iterator[Ready]:
    """Check everything a sweep of ``exp`` needs before its first trial; the block runs
    connected to the Ray cluster at ``address``, if one was given. A failed check is a
    UserError naming the field (a cluster that never offered the resources:
    :class:`~search.sweep.resources.ResourcesUnavailable`). A dry run does not download data."""
    out = exp.output_location()
    if resuming:
        check_resumable(exp, out)
    elif isinstance(out, str):
        store.check_bucket(out)
        refuse_existing_uri(exp, out)
    else:
        check_writable_dir(out)
        refuse_existing_sweep(exp, out)
    ray_address = resolve_ray_address(address)
    with ray_connection(ray_address):
        check_resources(exp.resources, ray_address)
        skip_data = dry_run and exp.dataset.download
        yield Ready(ray_address, None if skip_data else load_experiment_data(exp))


def load_experiment_data(exp: Experiment) -> DatasetSplits:
    """The experiment's dataset splits (the same for every trial, and for ``reproduce``)."""
    from search.data import load_dataset

    return load_dataset(
        exp.dataset.name,
        image_size=exp.dataset.image_size,
        data_dir=exp.dataset.data_dir,
        download=exp.dataset.download,
        val_fraction=exp.dataset.val_fraction,
        train_subset=exp.dataset.train_subset,
        seed=exp.seed,
        **exp.dataset.synthetic,
    )

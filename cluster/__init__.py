"""Run paretotune sweeps beyond one machine: Ray Jobs submission with token auth, and
templates for ``ray up`` (cloud, on-prem), KubeRay and SLURM (see ``docs/cluster.md``).

Modules: :mod:`cluster.auth` (token lookup, the refusal policy), :mod:`cluster.jobs`
(staging, submission, following a job), :mod:`cluster.cli` (``submit`` and ``jobs``),
:mod:`cluster.local` (a Ray cluster on this machine, stopped by PID). Nothing here imports Ray
at import time.
"""

from __future__ import annotations

__all__: list[str] = []

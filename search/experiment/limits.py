"""The experiment's limits: larger values are refused on load (they could only exhaust memory or
time). One place for each, read by loading, validation and the feasibility check."""

from __future__ import annotations

import re

__all__ = [
    "MAX_COUNT",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_FLOPS",
    "MAX_NODES",
    "MAX_PARAMS",
    "MAX_REPLICATES",
    "NAME_RE",
]

MAX_COUNT = 100_000  # num_trials, epochs, grace period, warmup epochs
MAX_REPLICATES = 32  # seeds per configuration: each is a model in the trial's memory
MAX_FILE_BYTES = 1 << 20  # an experiment file
MAX_NODES = 100_000  # values in one experiment (YAML aliases can multiply them)
MAX_DEPTH = 64
#: An experiment's name (also a study's and a folder's).
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Largest model a proposal may describe (Adam's fp32 state is ~16 bytes per parameter), and
#: the most forward FLOPs per image: beyond, a trial could only exhaust memory or time.
MAX_PARAMS = 1e9
MAX_FLOPS = 1e13

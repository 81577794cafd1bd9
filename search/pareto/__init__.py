"""Pareto fronts, hypervolume and matched-cost comparisons: pure computation on plain data.

Input rows are the trial dicts of ``trials.json`` (see ``docs/architecture.md``, "Results
directory"). Nothing here plots or touches files; ``search/report/`` draws what this returns.

Conventions:

* An objective is a column name and a direction, ``"max"`` or ``"min"``; the order given is the
  order of every value tuple returned.
* Only full-budget rows (``status`` ``COMPLETE``) whose objective values are all finite take
  part in fronts. A ``STOPPED`` trial (cut early by the scheduler) measured a partial budget at
  a high learning rate: it is shown as stopped, never as a point of a front.
* Point ``a`` dominates ``b`` when it is at least as good in every objective and strictly better
  in one. Identical points do not dominate each other, so duplicates are all on the front.

Hypervolume (Zitzler & Thiele 1998) is computed exactly, by sweeping in 2-D and by slicing
along the last objective above that (intended for 2 and 3 objectives). The default reference
point (:func:`default_reference`) is:

* a ``"max"`` objective (accuracy): ``0`` when every value is >= 0, else the worst value minus
  10 % of the range;
* a ``"min"`` objective (a cost): ``1.1 x`` the worst value seen, and the objective is measured
  in ``log10`` when all its values are > 0, because costs span decades and a linear axis would
  let the largest models own nearly all of the volume. Hypervolume units are then
  "accuracy x decades of cost".
"""

from search.pareto.attainment import AttainmentBand, attainment_band
from search.pareto.fronts import (
    Front,
    FrontPoint,
    Fronts,
    fronts,
    non_dominated_mask,
    nondominated_ranks,
    pareto_front,
    worst_where_nan,
)
from search.pareto.hypervolume import (
    HypervolumeHistory,
    Reference,
    default_reference,
    front_hypervolume,
    hypervolume,
    hypervolume_history,
)
from search.pareto.intervals import row_interval, separated, wilson
from search.pareto.matched import (
    MatchedAccuracy,
    accuracy_at_cost,
    cost_levels,
    matched_accuracy,
)
from search.pareto.objectives import (
    Direction,
    Objective,
    as_float,
    as_objectives,
    eligible_rows,
    is_eligible,
)

__all__ = [
    "AttainmentBand",
    "Direction",
    "Front",
    "FrontPoint",
    "Fronts",
    "HypervolumeHistory",
    "MatchedAccuracy",
    "Objective",
    "Reference",
    "accuracy_at_cost",
    "as_float",
    "as_objectives",
    "attainment_band",
    "cost_levels",
    "default_reference",
    "eligible_rows",
    "front_hypervolume",
    "fronts",
    "hypervolume",
    "hypervolume_history",
    "is_eligible",
    "matched_accuracy",
    "non_dominated_mask",
    "nondominated_ranks",
    "pareto_front",
    "row_interval",
    "separated",
    "wilson",
    "worst_where_nan",
]

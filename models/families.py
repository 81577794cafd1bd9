"""The model families' names: the one place they are written (torch-free).

``models/_registry.py`` holds one ``ModelFamily`` record per name (config, factory, cost
estimator), ``spaces/families.py`` extends each with its search space; every other list or
table of families derives from these. Importing this module imports no torch
(``models/__init__.py`` loads the torch modules on first use), so ``search`` can name the
families without loading a model.
"""

from __future__ import annotations

__all__ = ["FAMILIES"]

#: The model families, in the order reports list them.
FAMILIES: tuple[str, ...] = ("perceiver", "vit", "mixer", "fnet", "gmlp")

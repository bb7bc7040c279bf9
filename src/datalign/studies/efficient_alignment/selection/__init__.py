"""Data selection methods of the efficient-alignment study, by name.

``select("isa", embeddings, 0.1, seed=0)`` keeps 10% of the rows. One module
per method (``random_subset``, ``isa``, ``density``, ``quality``); each
registers itself with :func:`register_method`, and the registry imports every
module of this subpackage on first use, so a new method is one new file.
"""

from datalign.studies.efficient_alignment.selection.registry import (
    SelectionResult,
    available_methods,
    method_needs,
    register_method,
    resolve_budget,
    select,
)

__all__ = [
    "SelectionResult",
    "available_methods",
    "method_needs",
    "register_method",
    "resolve_budget",
    "select",
]

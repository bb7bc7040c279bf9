"""Text alignment measures side by side with Task2Vec: a registry, the measures, a table.

::

    from datalign.measures import available_measures, get_measure, alignment_table
    m = get_measure("gzip", max_pairs=500)       # unknown name or option: ValueError naming it
    rep = m.prepare(texts)                         # one set -> per-document representation
    m.alignment(rep_candidate, rep_target)         # float, higher = more aligned
    alignment_table({"a": texts_a, "b": texts_b}, ["b"], m, bootstrap=200)

Measures (one module each in :mod:`datalign.measures.kinds`; adding one is
adding a file, see :mod:`datalign.measures.registry`): ``gzip`` (1 - NCD,
ZIP-FIT), ``ngram`` (hashed n-gram distributions, DSIR), ``embedding_cosine``
(all-MiniLM-L6-v2 mean cosine). Names load on first use (PEP 562): importing
this package, the registry or the measures' modules imports neither torch nor
scikit-learn nor pandas.
"""

from __future__ import annotations

from datalign.core.lazy import lazy_exports

_EXPORTS = {
    "base": ("Comparison", "Measure", "Representation"),
    "registry": (
        "MeasureError", "MeasureInputError", "available_measures", "get_measure", "measure_description",
        "measure_options", "measures_schema", "register_measure", "resolve_options",
    ),
    "table": ("alignment_table",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())

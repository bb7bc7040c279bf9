"""The Task2Vec estimators, one module each.

Every module here whose name does not start with ``_`` is imported by
:func:`import_all`, which the registry calls the first time an estimator is
looked up (see :mod:`datalign.task2vec.registry`); its ``@register_estimator``
decorator makes it available by name. Adding an estimator is adding a module:
nothing here names them.
"""

from __future__ import annotations

from datalign.core.discovery import import_submodules


def import_all() -> list[str]:
    """Import every module of this package not starting with ``_`` (sorted); their names."""
    return import_submodules(__name__, __path__)

"""The text alignment measures, one module each.

Every module here whose name does not start with ``_`` is imported by
:func:`import_all`, which the registry calls the first time a measure is
looked up (see :mod:`datalign.measures.registry`); its ``@register_measure``
decorator makes it available by name. Adding a measure is adding a module:
nothing here names them.
"""

from __future__ import annotations

from datalign.core.discovery import import_submodules


def import_all() -> list[str]:
    """Import every module of this package not starting with ``_`` (sorted); their names."""
    return import_submodules(__name__, __path__)

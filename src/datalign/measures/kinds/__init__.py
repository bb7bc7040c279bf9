"""The text alignment measures, one module each.

Every module here whose name does not start with ``_`` is imported by
:func:`import_all`, which the registry calls the first time a measure is
looked up (see :mod:`datalign.measures.registry`); its ``@register_measure``
decorator makes it available by name. Adding a measure is adding a module:
nothing here names them.
"""

from __future__ import annotations

import importlib
import pkgutil


def import_all() -> list[str]:
    """Import every module of this package not starting with ``_`` (sorted); their names."""
    names = []
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        if not info.name.rsplit(".", 1)[1].startswith("_"):
            importlib.import_module(info.name)
            names.append(info.name)
    return names

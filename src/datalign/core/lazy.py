"""Names a package exports, loaded from their submodules on first use (PEP 562).

A package whose public names live in heavy submodules (torch, scikit-learn,
``datasets``) declares them in a module-level dict literal ``_EXPORTS``
(submodule -> names) and installs the hooks::

    _EXPORTS = {"embed": ("embed_batches",), "config": ("Task2VecConfig",)}
    __getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())

Importing the package then imports none of the submodules; ``from package
import embed_batches`` imports ``package.embed`` then. ``_EXPORTS`` must stay a
literal: :func:`datalign.core.pipeline.library_modules` reads it from the syntax
tree to know which submodule a script's ``from package import name`` runs (the
DVC stages' code dependencies), without importing anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

#: The name of the dict literal that declares a package's lazy exports.
EXPORTS_NAME = "_EXPORTS"


def lazy_exports(
    package: str,
    exports: Mapping[str, Iterable[str]],
    namespace: MutableMapping[str, Any],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The package's ``__getattr__``, ``__dir__`` and ``__all__``.

    ``exports`` maps a submodule (relative to ``package``) to the names it
    defines that the package exports; ``submodules`` are submodules exported as
    attributes themselves (``package.api``). A loaded name is stored in
    ``namespace`` (the package's ``globals()``), so it is looked up once.

    Raises ``ValueError`` if one name is exported from two submodules; the
    returned ``__getattr__`` raises ``AttributeError`` for a name not exported.
    """
    home: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in home:
                raise ValueError(f"{package}: '{name}' is exported from both .{home[name]} and .{module}")
            home[name] = module
    modules = tuple(submodules)

    def getattr_(name: str) -> Any:
        if name in modules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in home:
            value = getattr(importlib.import_module(f"{package}.{home[name]}"), name)
        else:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *home, *modules})

    getattr_.__name__, dir_.__name__ = "__getattr__", "__dir__"
    return getattr_, dir_, sorted([*home, *modules])

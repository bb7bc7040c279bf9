"""Plug-in discovery for the registries (Task2Vec estimators, alignment measures).

A registry's package imports every module of one folder the first time a name is
looked up; each module registers itself with a decorator. Adding a plug-in is
adding a file. :func:`datalign.core.pipeline.library_modules` recognises such
packages (they call :func:`import_submodules`) and counts all their modules as
dependencies of the DVC stages that use them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable


def import_submodules(package: str, path: Iterable[str]) -> list[str]:
    """Import every module of ``package`` (folder ``path``) not starting with ``_``, sorted; their names."""
    names = []
    for info in sorted(pkgutil.iter_modules(list(path), package + "."), key=lambda i: i.name):
        if not info.name.rsplit(".", 1)[1].startswith("_"):
            importlib.import_module(info.name)
            names.append(info.name)
    return names


class Discovery:
    """Calls ``import_all`` once; a failed call is retried on the next lookup.

    Marked done *before* the call, so that a plug-in that looks a name up while
    it loads does not recurse into discovery.
    """

    def __init__(self, import_all: Callable[[], object]) -> None:
        self._import_all = import_all
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self._import_all()
        except BaseException:
            self.done = False
            raise

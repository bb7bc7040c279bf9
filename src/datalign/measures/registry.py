"""Text alignment measures by name: the errors, the registry and its discovery.

A measure compares two sets of documents (a *candidate*, e.g. a training set,
and a *target*, e.g. an evaluation set) and returns one number, higher meaning
more aligned. Every measure is a subclass of
:class:`datalign.measures.base.Measure` registered under a name.

**Adding a measure is one new file** in the subpackage
:mod:`datalign.measures.kinds`, say ``kinds/mine.py``::

    @dataclass(frozen=True)
    class MineOptions(Options):                 # its own keys, checked and documented
        max_docs: int = option(100, "documents kept per set", minimum=1)

    @register_measure("mine", options=MineOptions)
    class Mine(Measure):
        \"\"\"One line: what it computes (its ``description``).\"\"\"
        def _prepare(self, texts): ...          # per-document representation
        def _compare(self, candidate, target):  # -> a Comparison (weighted value)
            ...

The registry imports every module of that subpackage (``pkgutil``, names not
starting with ``_``) the first time a measure is looked up
(:func:`get_measure`, :func:`available_measures`, :func:`measure_options`),
and the decorator registers what each defines. From then on
``get_measure("mine", max_docs=50)`` builds it, the workflow's config accepts
``measures: {run: [..., mine], mine: {max_docs: 50}}`` and
:func:`measures_schema` documents its keys; nothing else is edited. A measure
module imports its heavy libraries (torch, sentence-transformers, scikit-learn)
inside its functions, so that discovering the measures (planning a study)
imports none of them.

This module imports nothing heavy: the standard library, the option sets of
:mod:`datalign.task2vec.options` and the error types.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from datalign.core.discovery import Discovery
from datalign.core.errors import ConfigError, DataError
from datalign.measures import kinds as measure_package
from datalign.task2vec.options import options_schema

if TYPE_CHECKING:
    from datalign.measures.base import Measure

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Keys of the config's ``measures`` block that are not measure names.
RESERVED = ("run", "bootstrap", "confidence")


class MeasureError(ConfigError, ValueError):
    """An unknown measure or option, or a bad option value: one line naming it and the choices."""


class MeasureInputError(DataError, ValueError):
    """Documents a measure cannot use (an empty set, a non-text item): one line naming the set."""


@dataclass(frozen=True)
class MeasureEntry:
    """A registered measure: its class, its options class (or None) and its one-line description."""

    name: str
    cls: type
    options: type | None
    description: str


_REGISTRY: dict[str, MeasureEntry] = {}
_discovery = Discovery(measure_package.import_all)
C = TypeVar("C", bound=type)


def register_measure(name: str, options: type | None = None) -> Callable[[C], C]:
    """Class decorator: make a :class:`~datalign.measures.base.Measure` subclass available as ``name``.

    ``options`` is the measure's :class:`~datalign.task2vec.options.Options`
    dataclass (its keys live under ``measures.<name>`` in a config). The
    description is the first line of the class docstring. Registering another
    class under a taken name is a :class:`MeasureError`; the same class again
    (a module re-imported) is allowed.
    """
    if not _NAME.match(name) or name in RESERVED:
        raise MeasureError(f"measure name '{name}': lower case letters, digits and '_' only, "
                           f"not one of {', '.join(RESERVED)}")

    def deco(cls: C) -> C:
        old = _REGISTRY.get(name)
        if old is not None and (old.cls.__module__, old.cls.__qualname__) != (cls.__module__, cls.__qualname__):
            raise MeasureError(f"measure '{name}' is already registered by {old.cls.__module__}")
        if options is not None:
            options.section = f"measures.{name}"  # type: ignore[attr-defined]
        description = (cls.__doc__ or "").strip().split("\n")[0].strip() or name
        cls.name = name  # type: ignore[attr-defined]
        cls.description = description  # type: ignore[attr-defined]
        cls.options_class = options  # type: ignore[attr-defined]
        _REGISTRY[name] = MeasureEntry(name=name, cls=cls, options=options, description=description)
        return cls

    return deco


def discover_measures() -> None:
    """Import every module of :mod:`datalign.measures.kinds` once (their decorators register them)."""
    _discovery()


def available_measures() -> tuple[str, ...]:
    """Names of the registered measures, sorted."""
    discover_measures()
    return tuple(sorted(_REGISTRY))


def _entry(name: str) -> MeasureEntry:
    discover_measures()
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise MeasureError(f"unknown measure {name!r} (known: {', '.join(available_measures())})")
    return entry


def measure_options(name: str) -> type | None:
    """The options class of measure ``name`` (None if it has none)."""
    return _entry(name).options


def measure_description(name: str) -> str:
    """The one-line description of measure ``name``."""
    return _entry(name).description


def resolve_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of measure ``name``, defaults filled in and checked (a plain dict).

    An unknown key or a bad value is a one-line :class:`MeasureError` naming
    the measure, the key and what is allowed.
    """
    entry = _entry(name)
    given = dict(options or {})
    if entry.options is None:
        if given:
            raise MeasureError(f"measure '{name}': unknown option(s) {', '.join(sorted(map(str, given)))} "
                               "(it takes none)")
        return {}
    try:
        return entry.options.from_dict(given).to_dict()
    except ConfigError as err:
        raise MeasureError(str(err)) from None


def get_measure(name: str, **options: Any) -> Measure:
    """A measure ready to use: ``get_measure("gzip", max_pairs=500)``.

    An unknown name, an unknown option or a bad value is a :class:`MeasureError`
    (a :class:`ValueError`) naming it and the choices.
    """
    entry = _entry(name)
    resolved = resolve_options(name, options)
    opts = entry.options(**resolved) if entry.options is not None else None
    return entry.cls(opts)


def measures_schema(block: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of the config's ``measures`` block: ``block`` plus one sub-mapping per measure.

    ``block`` is the block's hand-written part (its shared keys: which measures
    run, the bootstrap); this adds every registered measure's options
    (``gzip: {...}``, each key with its type, bounds, default and description;
    no default for the sub-mapping itself, so configs that do not use it stay as
    written) and the allowed names of ``run``.
    """
    schema = copy.deepcopy(dict(block))
    props = schema.setdefault("properties", {})
    names = available_measures()
    if "run" in props:
        props["run"].setdefault("items", {})["enum"] = list(names)
        props["run"]["description"] = props["run"].get("description", "") + " (" + "; ".join(
            f"{n}: {measure_description(n).rstrip('.')}" for n in names) + ")"
    for name in names:
        cls = measure_options(name)
        if cls is not None:
            props[name] = options_schema(cls, f"options of the {name} measure (datalign.measures.kinds)")
    return schema

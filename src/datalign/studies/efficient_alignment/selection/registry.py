"""Selection methods by name: the result type, the budget rule and the registry.

A selection method ranks the n rows of a candidate set and keeps the first k.
Every method is a plain function registered under a name::

    @register_method("mine", needs="embeddings")
    def mine(data: np.ndarray, k: int, seed: int, *, alpha: float = 1.0) -> SelectionResult: ...

``data`` is what ``needs`` says: ``"embeddings"`` an (n, d) float array,
``"scores"`` an (n,) float array of per-row scores (e.g. a quality probe's
NLL), ``"any"`` either (only n is used). :func:`select` validates ``data``,
turns the budget (a fraction or a count) into k, calls the method and checks
what it returns. Adding a method is one new module in this subpackage: the
registry imports every module of the subpackage (:func:`datalign.core.discovery.import_submodules`) the first time a
method is looked up, so the decorator runs and no other file needs an edit.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike

from datalign.core.discovery import import_submodules
from datalign.core.errors import ConfigError, DataError

Needs = Literal["embeddings", "scores", "any"]
_NEEDS = ("embeddings", "scores", "any")


@dataclass
class SelectionResult:
    """What a selection method returns.

    ``indices``: (k,) int64 row indices into the candidate set, most preferred
    first (descending ``scores``; ties broken by the lower row index), so the
    selection at a smaller budget with the same seed is a prefix of this one.
    ``scores``: (n,) float64 per-row ranking score; higher is kept first (for a
    sampling method, the seeded random key whose top k is the sample).
    ``per_row``: further (n,) arrays the method computed (log-likelihoods,
    densities, NLLs), by name. ``info``: JSON-serialisable diagnostics
    (options used, convergence, bandwidth).
    """

    method: str
    indices: np.ndarray
    scores: np.ndarray
    per_row: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class SelectionMethod(Protocol):
    """The method protocol: ``(data, k, seed, *, option=default, ...) -> SelectionResult``.

    ``k`` is already checked to lie in [1, n]; the method must use only
    ``seed`` for its randomness (same seed, same result). Its options are
    keyword-only parameters: :func:`select` rejects any other name before the
    call; the method raises :class:`ConfigError` for an invalid value.
    """

    def __call__(self, data: np.ndarray, k: int, seed: int, **options: Any) -> SelectionResult: ...


@dataclass(frozen=True)
class _Entry:
    function: SelectionMethod
    needs: Needs


_REGISTRY: dict[str, _Entry] = {}
_DISCOVERED: set[str] = set()


def register_method(name: str, needs: Needs = "embeddings") -> Callable[[Any], Any]:
    """Function decorator: make a selection method available to :func:`select` as ``name``.

    ``needs`` is ``"embeddings"`` ((n, d) array), ``"scores"`` ((n,) array) or
    ``"any"``. Registering a different function under a taken name is a
    :class:`ConfigError`; re-registering the same function (a module
    re-imported) is allowed.
    """
    if needs not in _NEEDS:
        raise ConfigError(f"selection method '{name}': needs must be one of {_NEEDS}, got {needs!r}")

    def deco(function: Any) -> Any:
        previous = _REGISTRY.get(name)
        same = previous is not None and (
            getattr(previous.function, "__module__", None),
            getattr(previous.function, "__qualname__", None),
        ) == (getattr(function, "__module__", None), getattr(function, "__qualname__", None))
        if previous is not None and not same:
            raise ConfigError(f"selection method '{name}' is already registered "
                              f"by {previous.function.__module__}")
        _REGISTRY[name] = _Entry(function, needs)
        return function

    return deco


def discover(package: str = __package__) -> list[str]:
    """Import every module of ``package`` (default: this subpackage) once; return their names.

    Importing a module runs its :func:`register_method` decorators. A package
    already discovered is skipped.
    """
    if package in _DISCOVERED:
        return []
    pkg = importlib.import_module(package)
    names = [name.rsplit(".", 1)[1] for name in import_submodules(package, pkg.__path__)]
    _DISCOVERED.add(package)
    return names


def available_methods() -> tuple[str, ...]:
    """Names of the registered selection methods, sorted."""
    discover()
    return tuple(sorted(_REGISTRY))


def method_needs(name: str) -> Needs:
    """What method ``name`` takes: ``"embeddings"``, ``"scores"`` or ``"any"`` (ConfigError if unknown)."""
    return _entry(name).needs


def _entry(name: str) -> _Entry:
    discover()
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown selection method '{name}' (known: {', '.join(sorted(_REGISTRY))})"
        )
    return _REGISTRY[name]


def resolve_budget(budget: float | int, n: int, method: str = "?") -> int:
    """The number of rows k that ``budget`` keeps out of ``n``.

    An ``int`` is a count and must lie in [1, n]. A ``float`` is a fraction in
    (0, 1], rounded half up to k = floor(budget * n + 0.5) (not Python's
    round-half-to-even, so 0.5 of 5 rows is 3 on every platform); it must give
    k >= 1. Anything else, and a budget outside those ranges, is a one-line
    :class:`ConfigError` naming ``method`` and the numbers.
    """
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise ConfigError(f"selection '{method}': budget must be a fraction (float) or a count "
                          f"(int), got {budget!r}")
    if n < 1:
        raise DataError(f"selection '{method}': the candidate set is empty (n = {n})")
    if isinstance(budget, numbers.Integral):
        k = int(budget)
        if not 1 <= k <= n:
            raise ConfigError(f"selection '{method}': budget of {k} rows is outside [1, n = {n}]")
        return k
    fraction = float(budget)
    if not (math.isfinite(fraction) and 0.0 < fraction <= 1.0):
        raise ConfigError(f"selection '{method}': budget fraction {fraction!r} is outside (0, 1] "
                          f"(n = {n}; pass an int for a count of rows)")
    k = math.floor(fraction * n + 0.5)
    if k < 1:
        raise ConfigError(f"selection '{method}': budget fraction {fraction:g} of n = {n} rows "
                          f"rounds to 0 rows")
    return min(k, n)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest ``scores``, largest first; ties go to the lower index.

    ``scores`` is (n,); returns (k,) int64. A stable sort of ``-scores`` gives
    the tie rule, which makes every ranking reproducible across platforms.
    """
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k].astype(np.int64)


def _as_data(data: ArrayLike, needs: Needs, method: str) -> np.ndarray:
    arr = np.asarray(data, dtype=float)
    want_dims = {"embeddings": (2,), "scores": (1,), "any": (1, 2)}[needs]
    if arr.ndim not in want_dims:
        what = {"embeddings": "an (n, d) embedding array", "scores": "an (n,) score array",
                "any": "an (n,) or (n, d) array"}[needs]
        raise DataError(f"selection '{method}' needs {what}, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise DataError(f"selection '{method}': the candidate set is empty (shape {arr.shape})")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))[0])
        raise DataError(f"selection '{method}': {int(bad.sum())} non-finite value(s) in the input, "
                        f"first in row {row}")
    return arr


def _check_result(result: Any, method: str, n: int, k: int) -> SelectionResult:
    if not isinstance(result, SelectionResult):
        raise TypeError(f"selection method '{method}' returned {type(result).__name__}, "
                        "not a SelectionResult")
    idx = np.asarray(result.indices)
    if idx.shape != (k,) or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"selection method '{method}' returned indices of shape {idx.shape} "
                        f"and dtype {idx.dtype}, expected ({k},) integers")
    if idx.min() < 0 or idx.max() >= n or np.unique(idx).size != k:
        raise TypeError(f"selection method '{method}' returned repeated or out-of-range indices "
                        f"(n = {n}, k = {k})")
    if np.asarray(result.scores).shape != (n,):
        raise TypeError(f"selection method '{method}' returned scores of shape "
                        f"{np.asarray(result.scores).shape}, expected ({n},)")
    result.indices = idx.astype(np.int64)
    result.scores = np.asarray(result.scores, dtype=np.float64)
    return result


def select(
    method: str, data: ArrayLike, budget: float | int, seed: int, **options: Any
) -> SelectionResult:
    """Run selection method ``method`` on ``data`` and keep ``budget`` of its n rows.

    ``data``: (n, d) embeddings or (n,) per-row scores, as the method needs
    (:func:`method_needs`); ``budget``: a fraction in (0, 1] or a count (see
    :func:`resolve_budget`); ``seed``: the only source of randomness;
    ``options``: the method's keyword options. Returns the method's
    :class:`SelectionResult` (k indices, most preferred first). An unknown
    method, a bad budget or a bad option is a :class:`ConfigError`; input of
    the wrong shape or with NaN/inf is a :class:`DataError`.
    """
    entry = _entry(method)
    arr = _as_data(data, entry.needs, method)
    n = arr.shape[0]
    k = resolve_budget(budget, n, method)
    _check_options(method, entry.function, options)
    result = entry.function(arr, k, int(seed), **options)
    result = _check_result(result, method, n, k)
    result.info.setdefault("budget", budget)
    result.info.setdefault("n", n)
    result.info.setdefault("k", k)
    result.info.setdefault("seed", int(seed))
    return result


def _check_options(method: str, function: Any, options: dict[str, Any]) -> None:
    """A one-line :class:`ConfigError` for options the method's signature does not take."""
    params = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    allowed = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"selection '{method}': unknown option(s) {unknown} "
                          f"(allowed: {allowed})")

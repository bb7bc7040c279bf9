"""The training objectives a job can name, and how a module adds one.

An objective is a function ``run(spec, out_dir) -> log`` that trains one
model as the plain, JSON-able ``spec`` says (its ``"objective"`` key names
the objective; its other keys are the objective's own, e.g. every field of a
:class:`datalign.training.launch.TrainJob` for ``"causal_lm"``), writes the
checkpoint and ``train_log.json`` (the log, ``spec["record"]`` merged in) to
``out_dir`` on the main process only, and returns that log on every process.
Under ``accelerate launch`` every process calls it, like any ``accelerate``
code. :func:`run_objective` dispatches a spec to its objective.

A module adds an objective by registering it at import time::

    from datalign.training.objectives import register_objective

    @register_objective("kto")
    def train_kto(spec: dict, out_dir: str) -> dict: ...

    # or, for a function that serves several objectives:
    register_objective("dpo", run_preference_job)

and nothing else needs to change: a name not yet registered is looked up by
importing the modules of :mod:`datalign.training`, in alphabetical order,
until one of them has registered it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, overload

from datalign.core.errors import ConfigError

ObjectiveRunner = Callable[[dict[str, Any], str], dict[str, Any]]

_RUNNERS: dict[str, ObjectiveRunner] = {}
# Modules of the package that define no objective (the launcher runs as __main__
# in workers, so importing it again would load a second copy).
_NOT_OBJECTIVES = frozenset({"launch", "objectives"})


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{getattr(fn, '__qualname__', repr(fn))}"


@overload
def register_objective(name: str) -> Callable[[ObjectiveRunner], ObjectiveRunner]: ...
@overload
def register_objective(name: str, runner: ObjectiveRunner) -> ObjectiveRunner: ...
def register_objective(name: str, runner: ObjectiveRunner | None = None) -> Any:
    """Register ``runner`` as objective ``name``; usable as ``@register_objective(name)``.

    Registering the same function again (a module imported twice) is a no-op;
    another function under a taken name is a :class:`ConfigError`.
    """

    def add(fn: ObjectiveRunner) -> ObjectiveRunner:
        known = _RUNNERS.get(name)
        if known is not None and _qualified(known) != _qualified(fn):
            raise ConfigError(
                f"training objective '{name}' is already registered by {_qualified(known)}; "
                f"cannot register {_qualified(fn)} under the same name"
            )
        _RUNNERS[name] = fn
        return fn

    return add if runner is None else add(runner)


def _objective_modules() -> list[str]:
    import datalign.training as package

    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    return [f"{package.__name__}.{n}" for n in names
            if not n.startswith("_") and n not in _NOT_OBJECTIVES]


def objective_runner(name: str) -> ObjectiveRunner:
    """The function registered as objective ``name``; an unknown name is a :class:`ConfigError`."""
    if name not in _RUNNERS:
        for module in _objective_modules():
            importlib.import_module(module)
            if name in _RUNNERS:
                break
    if name not in _RUNNERS:
        raise ConfigError(
            f"unknown training objective '{name}'; known: {', '.join(objective_names()) or 'none'}"
        )
    return _RUNNERS[name]


def objective_names() -> list[str]:
    """Every registered objective, after importing all modules of :mod:`datalign.training`."""
    for module in _objective_modules():
        importlib.import_module(module)
    return sorted(_RUNNERS)


def run_objective(spec: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Any]:
    """Run the objective ``spec["objective"]`` names on ``spec`` and ``out_dir``; return its log.

    A spec that names no objective, or an unknown one, is a :class:`ConfigError`.
    """
    name = spec.get("objective")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"training spec names no objective (its 'objective' key is {name!r})")
    return objective_runner(name)(dict(spec), str(out_dir))

"""Typed option sets: one definition per key, checked in Python and written out as JSON schema.

An option set is a frozen dataclass deriving from :class:`Options` whose fields
are declared with :func:`option`: the field's annotation (``bool``, ``int``,
``float`` or ``str``) is its type, and :func:`option` gives its default,
description and bounds or allowed values. From that one definition come

- the checks run when an instance is built (:meth:`Options.__post_init__`),
  which raise a one-line :class:`~datalign.core.errors.ConfigError` naming the
  key (``task2vec.fast.precision: must be one of auto, float32, bfloat16, got 'fp8'``);
- its JSON schema (:func:`options_schema`, draft 2020-12), which accepts the
  same values: a whole-number float such as ``8.0`` is an integer for both (and
  becomes ``8``); the one difference is that the Python check also refuses a
  non-finite number (``.nan``, ``.inf``), which a schema cannot express.

:class:`datalign.task2vec.Task2VecConfig` (the keys every estimator shares) and
each estimator's own options (e.g. ``datalign.task2vec.estimators.fast.FastOptions``)
are such sets.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from datalign.core.errors import ConfigError

_KINDS: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}
_SCHEMA_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
_FLOAT_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def option(
    default: Any,
    description: str,
    *,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    enum: Sequence[str] | Callable[[], Sequence[str]] | None = None,
) -> Any:
    """A dataclass field of an :class:`Options` set, with what checks and documents it.

    ``enum`` is the allowed values of a ``str`` option, or a function returning
    them (looked up at each check, e.g. the registered estimators).
    """
    spec = {"description": description, "minimum": minimum, "exclusiveMinimum": exclusive_minimum,
            "maximum": maximum, "enum": enum}
    return dataclasses.field(default=default, metadata={"option": {k: v for k, v in spec.items() if v is not None}})


@dataclass(frozen=True)
class OptionSpec:
    """One option as :func:`option` declared it (enum resolved)."""

    name: str
    kind: type
    default: Any
    description: str
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        """The option's JSON schema: type, allowed values or bounds, default, description."""
        out: dict[str, Any] = {"type": _SCHEMA_TYPES[self.kind]}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        for key, value in (("minimum", self.minimum), ("exclusiveMinimum", self.exclusive_minimum),
                           ("maximum", self.maximum)):
            if value is not None:
                out[key] = value
        out["default"] = self.default
        out["description"] = self.description
        return out

    def expected(self) -> str:
        """What a valid value is, in words (``an integer >= 1``)."""
        if self.enum is not None:
            return f"one of {', '.join(self.enum)}"
        if self.kind is bool:
            return "true or false"
        what = {int: "an integer", float: "a number", str: "a string"}[self.kind]
        bounds = [f"{op} {value:g}" for op, value in ((">=", self.minimum), (">", self.exclusive_minimum),
                                                      ("<=", self.maximum)) if value is not None]
        return " ".join([what, " and ".join(bounds)]) if bounds else what

    def check(self, value: Any, path: str) -> Any:
        """``value`` if it is valid (a whole-number float as an int), else a :class:`ConfigError`."""
        ok = True
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if ok and self.enum is not None:
            ok = value in self.enum
        if ok and self.minimum is not None:
            ok = value >= self.minimum
        if ok and self.exclusive_minimum is not None:
            ok = value > self.exclusive_minimum
        if ok and self.maximum is not None:
            ok = value <= self.maximum
        if not ok:
            hint = ""
            if self.kind in (int, float) and isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
                hint = " (YAML reads a number such as 5e-5, without a dot, as a string: write 5.0e-5)"
            raise ConfigError(f"{path}.{self.name}: must be {self.expected()}, got {value!r}{hint}")
        return value


def option_specs(cls: type) -> list[OptionSpec]:
    """The options of the dataclass ``cls``, in field order (fields without :func:`option` are skipped)."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        kind = _KINDS.get(f.type, f.type) if isinstance(f.type, str) else f.type
        if kind not in _SCHEMA_TYPES:
            raise TypeError(f"{cls.__name__}.{f.name}: an option is a bool, int, float or str, not {f.type!r}")
        enum = meta.get("enum")
        if callable(enum):
            enum = enum()
        out.append(OptionSpec(
            name=f.name, kind=kind, default=f.default, description=meta["description"],
            minimum=meta.get("minimum"), exclusive_minimum=meta.get("exclusiveMinimum"),
            maximum=meta.get("maximum"), enum=None if enum is None else tuple(enum),
        ))
    return out


def options_schema(cls: type, description: str | None = None) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a mapping of ``cls``'s options: no other key allowed."""
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if description:
        out["description"] = description
    out["properties"] = {spec.name: spec.schema() for spec in option_specs(cls)}
    return out


class Options:
    """Base of the option dataclasses: checks every :func:`option` field when built.

    ``section`` is the dotted config path of the set, used in messages
    (``task2vec.fast``); :func:`datalign.task2vec.register_estimator` sets it
    for an estimator's options.
    """

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        path = type(self).section or type(self).__name__
        for spec in option_specs(type(self)):
            value = spec.check(getattr(self, spec.name), path)
            object.__setattr__(self, spec.name, value)

    @classmethod
    def from_dict(cls, block: Any, path: str | None = None) -> Any:
        """Build from a mapping of option name to value; unknown keys are a :class:`ConfigError`."""
        path = path or cls.section or cls.__name__
        if not isinstance(block, Mapping):
            raise ConfigError(f"{path}: must be a mapping, got {block!r}")
        names = [spec.name for spec in option_specs(cls)]
        unknown = sorted(set(block) - set(names), key=str)
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(names))})"
            )
        return cls(**block)

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict, in declaration order."""
        return {spec.name: getattr(self, spec.name) for spec in option_specs(type(self))}

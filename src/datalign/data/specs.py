"""Checks shared by the registries of the config (preference and labelled datasets,
encoders): one entry's mapping, its source (or kind) and the keys that one takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from datalign.core.errors import ConfigError


def check_source_and_keys(
    where: str,
    spec: Any,
    sources: Iterable[str],
    common_keys: Iterable[str],
    source_keys: Mapping[str, Iterable[str]],
    field: str = "source",
) -> str:
    """The entry's source, after checking ``spec`` is a mapping with a known source and
    only keys that source takes (plus ``common_keys``) and a string ``description``.

    ``where`` is the entry's dotted config key (``labelled_datasets.mnist``); ``field``
    the key that picks the entry's kind (``source``, or ``kind`` for encoders). Raises
    :class:`ConfigError` with one line naming the bad key.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a {field}, got {spec!r}")
    source = spec.get(field)
    if source not in source_keys:
        raise ConfigError(f"{where}.{field}: expected one of {list(sources)}, got {source!r}")
    allowed = set(common_keys) | set(source_keys[source])
    unknown = sorted(k for k in spec if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key for {field} {source} (allowed: {sorted(allowed)})")
    if spec.get("description") is not None and not isinstance(spec["description"], str):
        raise ConfigError(f"{where}.description: expected a string, got {spec['description']!r}")
    return source

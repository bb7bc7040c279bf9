"""Checks shared by the dataset registries (text, preference, labelled): one entry's
mapping, its source and the keys that source takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from datalign.core.errors import ConfigError


def check_source_and_keys(
    where: str,
    spec: Any,
    sources: Iterable[str],
    common_keys: set[str] | frozenset[str],
    source_keys: Mapping[str, set[str] | frozenset[str]],
) -> str:
    """The entry's source, after checking ``spec`` is a mapping with a known source and
    only keys that source takes (plus ``common_keys``) and a string ``description``.

    ``where`` is the entry's dotted config key (``labelled_datasets.mnist``). Raises
    :class:`ConfigError` with one line naming the bad key.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a source, got {spec!r}")
    source = spec.get("source")
    if source not in source_keys:
        raise ConfigError(f"{where}.source: expected one of {list(sources)}, got {source!r}")
    allowed = set(common_keys) | set(source_keys[source])
    unknown = sorted(k for k in spec if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key for source {source} (allowed: {sorted(allowed)})")
    if spec.get("description") is not None and not isinstance(spec["description"], str):
        raise ConfigError(f"{where}.description: expected a string, got {spec['description']!r}")
    return source

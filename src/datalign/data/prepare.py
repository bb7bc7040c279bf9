"""Prepare one registry entry: load it from its source, split it, write it with a manifest.

A prepared dataset is a directory holding ``train.jsonl``, ``validation.jsonl``,
``test.jsonl`` (one ``{"text", "group"}`` object per line) and
``manifest.json`` (name, source, spec, per split rows / characters / groups /
SHA-256 of the file, source details, provenance). It is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError, DataError
from datalign.core.io import Timer, atomic_path, provenance, read_json, write_json
from datalign.data.hub import check_hf_spec, load_hf
from datalign.data.local import check_local_spec, load_local
from datalign.data.mixture import build_mixture, mixture_shares, needed_components
from datalign.data.package import check_package_spec, load_package
from datalign.data.records import (
    Document,
    Loaded,
    check_reading_spec,
    read_documents_file,
    template_fields,
    write_split,
)
from datalign.data.split import (
    SPLITS,
    parse_fractions,
    require_nonempty,
    seeded_order,
    split_by_group,
)
from datalign.data.stdlib import PAIR_LIMITS, check_stdlib_spec, load_stdlib

log = logging.getLogger(__name__)

COMMON_KEYS = frozenset({"source", "description"})
# The length filter applies to loaded documents; a mixture mixes prepared splits and has none.
LENGTH_KEYS = frozenset({"min_chars", "max_chars"})
# The reading policy of datalign.data.records: values that are not text, and decoding.
DECODING_KEYS = frozenset({"encoding", "errors", "fallback_encoding"})
SOURCE_KEYS: dict[str, frozenset[str]] = {
    "stdlib": frozenset(
        {"kind", "template", "split", "max_files", "max_rows", "exclude", "errors", *PAIR_LIMITS}
        | LENGTH_KEYS
    ),
    "package": frozenset(
        {"package", "pip", "files", "module", "attribute", "split", "max_rows", "on_invalid"}
        | DECODING_KEYS
        | LENGTH_KEYS
    ),
    "local": frozenset(
        {"path", "format", "text_field", "template", "group_field", "split", "max_rows"}
        | {"on_invalid"}
        | DECODING_KEYS
        | LENGTH_KEYS
    ),
    "hf": frozenset(
        {
            "path",
            "name",
            "split",
            "splits",
            "fractions",
            "revision",
            "streaming",
            "data_files",
            "data_dir",
            "cache_dir",
            "template",
            "text_field",
            "group_field",
            "limit",
            "join",
            "on_invalid",
        }
        | LENGTH_KEYS
    ),
    "mixture": frozenset({"components"}),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "stdlib": ("kind",),
    "package": ("package",),
    "local": ("path",),
    "hf": ("path",),
    "mixture": ("components",),
}
CHECKS: dict[str, Callable[[str, Mapping[str, Any]], Any]] = {
    "stdlib": check_stdlib_spec,
    "package": check_package_spec,
    "local": check_local_spec,
    "hf": check_hf_spec,
    "mixture": mixture_shares,
}
LOADERS: dict[str, Callable[[str, Mapping[str, Any]], Loaded]] = {
    "stdlib": load_stdlib,
    "package": load_package,
    "local": load_local,
    "hf": load_hf,
}
_INT_KEYS = ("max_files", "max_rows", "min_chars", "max_chars", *PAIR_LIMITS)


def validate_spec(name: str, spec: Any) -> None:
    """Check a dataset spec (``datasets.<name>`` of the config) without loading anything.

    Raises ConfigError naming the key (``datasets.<name>.<key>``) for an
    unknown source, a missing required key, an unknown key, or a bad value.
    """
    where = f"datasets.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a source, got {spec!r}")
    source = spec.get("source")
    if source not in SOURCE_KEYS:
        raise ConfigError(f"{where}.source: expected one of {sorted(SOURCE_KEYS)}, got {source!r}")
    for key in REQUIRED_KEYS[source]:
        if spec.get(key) is None:
            raise ConfigError(f"{where}.{key}: required for source {source}")
    allowed = COMMON_KEYS | SOURCE_KEYS[source]
    unknown = sorted(k for k in spec if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key for source {source} (allowed: {sorted(allowed)})"
        )
    for key in _INT_KEYS:
        value = spec.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ConfigError(f"{where}.{key}: expected a non-negative integer, got {value!r}")
    for key in ("template", "text_field", "group_field"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise ConfigError(f"{where}.{key}: expected a string, got {spec[key]!r}")
    if isinstance(spec.get("template"), str):
        template_fields(spec["template"], f"{where}.template")
    check_reading_spec(name, spec)
    if source in ("stdlib", "package", "local"):
        parse_fractions(spec.get("split"), f"{where}.split")
    if source == "hf":
        parse_fractions(spec.get("fractions"), f"{where}.fractions")
    CHECKS[source](name, spec)


def mixture_components(spec: Mapping[str, Any]) -> list[str]:
    """Datasets that must be prepared before this one: a mixture's components with a
    positive share; ``[]`` for every other source."""
    if spec.get("source") != "mixture":
        return []
    return needed_components(spec)


def _length_filter(docs: list[Document], spec: Mapping[str, Any]) -> list[Document]:
    lo = int(spec.get("min_chars") or 1)
    hi = spec.get("max_chars")
    return [
        d
        for d in docs
        if d.text.strip() and lo <= len(d.text) and (hi is None or len(d.text) <= hi)
    ]


def _split_documents(
    name: str, spec: Mapping[str, Any], seed: int, loaded: Loaded
) -> tuple[dict[str, list[Document]], list[str], dict[str, float] | None]:
    """The three splits, which of them must be non-empty, and the fractions used (None: hub splits)."""
    if loaded.presplit is not None:
        splits = {
            s: seeded_order(_length_filter(loaded.presplit.get(s, []), spec), seed, name, s)
            for s in SPLITS
        }
        return splits, [s for s in SPLITS if s in loaded.presplit], None
    docs = _length_filter(loaded.documents or [], spec)
    if spec.get("max_rows") is not None:
        docs = docs[: int(spec["max_rows"])]
    key = "fractions" if spec["source"] == "hf" else "split"
    fractions = parse_fractions(spec.get(key), f"datasets.{name}.{key}")
    return split_by_group(docs, seed, name, fractions), list(SPLITS), fractions


def prepare_dataset(
    name: str,
    spec: Mapping[str, Any],
    out_dir: Path,
    seed: int,
    component_dirs: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Build dataset ``name`` from its spec into ``out_dir`` and return its manifest.

    Splits are by group: group g goes to test if u < f_test, to validation if
    u < f_test + f_validation, else to train, with
    u = int(sha256(f"{seed}:{name}:{g}")[:16], 16) / 2**64; each split is then
    put in a seeded order. Hub splits given by ``splits`` are used as they are,
    and a mixture mixes its components' prepared splits (``component_dirs``).
    A split that should hold documents but is empty is a DataError.
    """
    validate_spec(name, spec)
    source = spec["source"]
    with Timer() as timer:
        if source == "mixture":
            splits, details = build_mixture(name, spec, seed, component_dirs)
            required, fractions = list(SPLITS), None
            hint = "the components' splits are too small"
        else:
            loaded = LOADERS[source](name, spec)
            splits, required, fractions = _split_documents(name, spec, seed, loaded)
            details = loaded.details
            hint = "raise its split fractions or its row/file limits"
        require_nonempty(splits, required, name, hint)
    manifest: dict[str, Any] = {
        "name": name,
        "source": source,
        "spec": dict(spec),
        "seed": seed,
        "fractions": fractions,
        "splits": {},
        "details": details,
    }
    with atomic_path(out_dir, is_dir=True) as tmp:
        for split in SPLITS:
            manifest["splits"][split] = {
                **write_split(tmp / f"{split}.jsonl", splits[split]),
                "provided": split in required,
            }
        manifest["provenance"] = provenance(
            config_slice=dict(spec), seed=seed, seconds=round(timer.seconds, 3)
        )
        write_json(tmp / "manifest.json", manifest)
    log.info(
        "dataset %s: %s in %.1fs",
        name,
        ", ".join(
            f"{s} {manifest['splits'][s]['rows']} rows / {manifest['splits'][s]['characters']} chars"
            for s in SPLITS
        ),
        timer.seconds,
    )
    return manifest


def read_documents(data_dir: Path, split: str) -> list[Document]:
    """The documents (text and group) of one prepared split."""
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' (expected one of {list(SPLITS)})")
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: prepared split not found (is {Path(data_dir).name} prepared?)")
    docs = read_documents_file(path)
    if not docs:
        manifest_path = Path(data_dir) / "manifest.json"
        provided = (
            read_json(manifest_path)["splits"][split].get("provided", True)
            if manifest_path.is_file()
            else True
        )
        why = "not among the hub splits it was given" if not provided else "empty"
        raise DataError(f"{path}: dataset {Path(data_dir).name} has no {split} documents ({why})")
    return docs


def read_split(data_dir: Path, split: str) -> list[str]:
    """The texts of one prepared split, in their stored (seeded) order."""
    return [d.text for d in read_documents(data_dir, split)]

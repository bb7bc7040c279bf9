"""The spec of one preference dataset (a registry entry) and its validation.

The keys, types and defaults are those of ``schema.yaml`` beside this file
(tests check that the two agree); :func:`validate_preference_spec` checks a
spec without loading anything and raises a one-line ConfigError naming the
key (``<key_prefix>.<name>.<key>``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from datalign.core.errors import ConfigError
from datalign.data.preference.bbc_news import BBC_CLASSES
from datalign.data.preference.bbc_news import PROMPT_FIELDS as BBC_PROMPT_FIELDS
from datalign.data.preference.drug_reviews import PAIR_WITHIN
from datalign.data.preference.drug_reviews import PROMPT_FIELDS as DRUG_PROMPT_FIELDS
from datalign.data.preference.hub import KNOWN_HUB, with_hub_defaults
from datalign.data.preference.local import FORMATS
from datalign.data.preference.oasst import OASST_PAIRINGS
from datalign.data.preference.rows import FIELD_DEFAULTS, LAYOUTS, ON_BAD_ROW
from datalign.data.preference.stdlib_pairs import NEGATIVES
from datalign.data.preference.stdlib_pairs import PROMPT_FIELDS as STDLIB_PROMPT_FIELDS
from datalign.data.records import template_fields
from datalign.data.specs import check_source_and_keys
from datalign.data.stdlib import PAIR_LIMITS

# The config mapping that holds the preference registry, as named in error messages.
KEY_PREFIX = "preference_datasets"
COMMON_KEYS = frozenset({"source", "description", "max_rows", "on_bad_row", "test_fraction"})
FIELD_KEYS = frozenset({*FIELD_DEFAULTS, "group_field"})
OASST_KEYS = frozenset({"lang", "pairing"})
SOURCE_KEYS: dict[str, frozenset[str]] = {
    "hf": frozenset(
        {
            "path", "name", "split", "splits", "revision", "data_files", "data_dir",
            "cache_dir", "streaming", "limit", "layout",
        }
    )
    | FIELD_KEYS
    | OASST_KEYS,
    "local": frozenset({"path", "format", "layout"}) | FIELD_KEYS | OASST_KEYS,
    "stdlib": frozenset({"negative", "prompt_template", "max_files", "exclude", *PAIR_LIMITS}),
    "bbc_news": frozenset({"classes", "prompt_template"}),
    "drug_reviews": frozenset({"path", "pair_within", "min_vote_gap", "prompt_template"}),
}
SOURCES = tuple(SOURCE_KEYS)
# Defaults of the optional keys (None: not used unless given). schema.yaml states the same.
DEFAULTS: dict[str, Any] = {
    "description": None,
    "max_rows": None,
    "on_bad_row": "error",
    "test_fraction": 0.1,
    "name": None,
    "split": None,
    "splits": None,
    "revision": None,
    "data_files": None,
    "data_dir": None,
    "cache_dir": None,
    "streaming": False,
    "limit": None,
    "layout": None,
    "format": None,
    **FIELD_DEFAULTS,
    "group_field": None,
    "lang": None,
    "pairing": "best_vs_rest",
    "negative": "other_function",
    "prompt_template": None,
    "max_files": None,
    "exclude": None,
    **PAIR_LIMITS,
    "classes": None,
    "pair_within": "condition",
    "min_vote_gap": 5,
}
# Which field keys each layout reads.
LAYOUT_FIELDS: dict[str, frozenset[str]] = {
    "kto": frozenset({"prompt_field", "completion_field", "label_field", "group_field"}),
    "pairs": frozenset({"prompt_field", "chosen_field", "rejected_field", "group_field"}),
    "hh": frozenset({"chosen_field", "rejected_field", "group_field"}),
    "oasst": OASST_KEYS,
}


def _int(value: Any, where: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")


def _template(value: Any, where: str, allowed: tuple[str, ...]) -> None:
    _string(value, where)
    unknown = [f for f in template_fields(value, where) if f not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} (available: {list(allowed)})")


def _check_rows_spec(where: str, spec: Mapping[str, Any]) -> None:
    """Checks shared by hf and local: layout, column names, oasst options."""
    layout = spec.get("layout")
    if layout is not None and layout not in LAYOUTS:
        raise ConfigError(f"{where}.layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    for key in FIELD_KEYS | {"lang"}:
        if spec.get(key) is not None:
            _string(spec[key], f"{where}.{key}")
    pairing = spec.get("pairing")
    if pairing is not None and pairing not in OASST_PAIRINGS:
        raise ConfigError(f"{where}.pairing: expected one of {list(OASST_PAIRINGS)}, got {pairing!r}")
    given = sorted(k for k in FIELD_KEYS | OASST_KEYS if spec.get(k) is not None)
    if layout is None:
        stray = [k for k in given if k in OASST_KEYS]
        if stray:
            raise ConfigError(f"{where}.{stray[0]}: only with layout oasst (set layout: oasst)")
        return
    stray = [k for k in given if k not in LAYOUT_FIELDS[layout]]
    if stray:
        users = sorted(lay for lay, keys in LAYOUT_FIELDS.items() if stray[0] in keys)
        raise ConfigError(f"{where}.{stray[0]}: not read by layout {layout} (only by {users})")


def _check_hf(where: str, spec: Mapping[str, Any]) -> None:
    _string(spec.get("path"), f"{where}.path")
    resolved = with_hub_defaults(spec)
    if resolved.get("layout") is None:
        raise ConfigError(
            f"{where}.layout: required for hub id {spec['path']!r} (known ids with a default: {sorted(KNOWN_HUB)})"
        )
    has_split, has_splits = resolved.get("split") is not None, resolved.get("splits") is not None
    if has_split == has_splits:
        raise ConfigError(
            f"{where}.split: give split (one hub split, cut by test_fraction) or splits ({{train: X, test: Y}}), one of them"
        )
    if has_split:
        _string(resolved["split"], f"{where}.split")
    else:
        splits = resolved["splits"]
        if not isinstance(splits, Mapping) or set(splits) != {"train", "test"}:
            raise ConfigError(
                f"{where}.splits: expected {{train: <hub split>, test: <hub split>}}, got {splits!r}"
            )
        for key, value in splits.items():
            _string(value, f"{where}.splits.{key}")
        if spec.get("test_fraction") is not None:
            raise ConfigError(f"{where}.test_fraction: only with split (splits are used as given)")
    for key in ("name", "revision", "data_dir", "cache_dir"):
        if spec.get(key) is not None:
            _string(spec[key], f"{where}.{key}")
    files = spec.get("data_files")
    if files is not None and not isinstance(files, str | list | Mapping):
        raise ConfigError(f"{where}.data_files: expected a path, a list or a mapping, got {files!r}")
    if spec.get("limit") is not None:
        _int(spec["limit"], f"{where}.limit", 1)
    if spec.get("streaming") is not None and not isinstance(spec["streaming"], bool):
        raise ConfigError(f"{where}.streaming: expected true or false, got {spec['streaming']!r}")
    _check_rows_spec(where, resolved)


def _check_local(where: str, spec: Mapping[str, Any]) -> None:
    if not isinstance(spec.get("path"), str | os.PathLike) or not str(spec["path"]):
        raise ConfigError(f"{where}.path: expected a file, directory or glob, got {spec.get('path')!r}")
    formats = sorted(set(FORMATS.values()))
    if spec.get("format") is not None and spec["format"] not in formats:
        raise ConfigError(f"{where}.format: expected one of {formats}, got {spec['format']!r}")
    _check_rows_spec(where, spec)


def _check_stdlib(where: str, spec: Mapping[str, Any]) -> None:
    negative = spec.get("negative")
    if negative is not None and negative not in NEGATIVES:
        raise ConfigError(f"{where}.negative: expected one of {list(NEGATIVES)}, got {negative!r}")
    if spec.get("prompt_template") is not None:
        _template(spec["prompt_template"], f"{where}.prompt_template", STDLIB_PROMPT_FIELDS)
    if spec.get("max_files") is not None:
        _int(spec["max_files"], f"{where}.max_files", 1)
    for key in PAIR_LIMITS:
        if spec.get(key) is not None:
            _int(spec[key], f"{where}.{key}", 0)
    exclude = spec.get("exclude")
    if exclude is not None and (
        not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude)
    ):
        raise ConfigError(f"{where}.exclude: expected a list of glob patterns, got {exclude!r}")


def _check_bbc(where: str, spec: Mapping[str, Any]) -> None:
    classes = spec.get("classes")
    if classes is not None:
        if (
            not isinstance(classes, list)
            or len(classes) < 2
            or len(set(map(str, classes))) != len(classes)
        ):
            raise ConfigError(f"{where}.classes: expected a list of at least 2 distinct classes, got {classes!r}")
        unknown = [c for c in classes if c not in BBC_CLASSES]
        if unknown:
            raise ConfigError(f"{where}.classes: unknown class(es) {unknown} (available: {list(BBC_CLASSES)})")
    if spec.get("prompt_template") is not None:
        _template(spec["prompt_template"], f"{where}.prompt_template", BBC_PROMPT_FIELDS)


def _check_drug_reviews(where: str, spec: Mapping[str, Any]) -> None:
    if spec.get("path") is not None and (
        not isinstance(spec["path"], str | os.PathLike) or not str(spec["path"])
    ):
        raise ConfigError(f"{where}.path: expected a .zip or .tsv file, got {spec['path']!r}")
    within = spec.get("pair_within")
    if within is not None and within not in PAIR_WITHIN:
        raise ConfigError(f"{where}.pair_within: expected one of {list(PAIR_WITHIN)}, got {within!r}")
    if spec.get("min_vote_gap") is not None:
        _int(spec["min_vote_gap"], f"{where}.min_vote_gap", 1)
    if spec.get("prompt_template") is not None:
        # Pairs within a condition hold reviews of different drugs: the prompt may name the condition only.
        allowed = DRUG_PROMPT_FIELDS if within == "drug" else ("condition",)
        _template(spec["prompt_template"], f"{where}.prompt_template", allowed)


CHECKS = {
    "hf": _check_hf,
    "local": _check_local,
    "stdlib": _check_stdlib,
    "bbc_news": _check_bbc,
    "drug_reviews": _check_drug_reviews,
}


def validate_preference_spec(name: str, spec: Any, key_prefix: str = KEY_PREFIX) -> None:
    """Check a preference dataset spec without loading anything.

    Raises ConfigError, one line naming the key (``<key_prefix>.<name>.<key>``,
    e.g. ``preference_datasets.hh.layout``), for a spec that is not a mapping,
    an unknown source, a missing required key, a key the source does not take,
    or a bad value. Returns None.
    """
    where = f"{key_prefix}.{name}"
    source = check_source_and_keys(where, spec, SOURCES, COMMON_KEYS, SOURCE_KEYS)
    if spec.get("max_rows") is not None:
        _int(spec["max_rows"], f"{where}.max_rows", 2)
    on_bad = spec.get("on_bad_row")
    if on_bad is not None and on_bad not in ON_BAD_ROW:
        raise ConfigError(f"{where}.on_bad_row: expected one of {list(ON_BAD_ROW)}, got {on_bad!r}")
    fraction = spec.get("test_fraction")
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1
    ):
        raise ConfigError(f"{where}.test_fraction: expected a number in (0, 1), got {fraction!r}")
    CHECKS[source](where, spec)

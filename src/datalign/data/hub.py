"""Datasets loaded with ``datasets.load_dataset`` (the Hugging Face hub, or local files by builder).

Either ``split: X`` (one hub split, cut into our train/validation/test by
group hashing with ``fractions``) or ``splits: {train: X, validation: Y,
test: Z}`` (hub splits used as they are; any subset). Each row becomes
``template.format_map(row)`` (or ``row[text_field]``, default ``text``); blank
texts are dropped. ``limit`` keeps the first rows of each hub split (with
``streaming`` only that many rows are read).

``join: {name: {column: C, item: T, sep: S}}`` adds a field ``name`` to every
row before templating: ``S.join(T.format_map(e) for e in row[C])`` over the
elements of the list column ``C`` (an element that is not a mapping is
``{value}``; ``sep`` defaults to a newline). That is how a nested column such
as LeanDojo's ``traced_tactics`` (a list of ``{tactic, state_before, ...}``)
becomes text; a row whose list is empty renders blank and is dropped.

``datasets`` 4.0 and later refuse repositories with a loading script; on that
error the hub's parquet export (``refs/convert/parquet``) is tried once.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from datalign.data.records import (
    Document,
    Loaded,
    check_columns,
    render_rows,
    template_fields,
)
from datalign.data.split import SPLITS
from datalign.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Messages by which datasets says a repository needs its (no longer run) loading script.
SCRIPT_ERROR_MARKERS = (
    "dataset scripts are no longer supported",
    "loading script",
    "trust_remote_code",
)
LOAD_KEYS = ("name", "revision", "data_files", "data_dir", "cache_dir")


def is_script_error(exc: BaseException) -> bool:
    """Whether an exception from ``load_dataset`` says the repository needs a loading script."""
    message = str(exc).lower()
    return any(marker in message for marker in SCRIPT_ERROR_MARKERS)


def parquet_export_url(path: str, config: str | None, split: str) -> str:
    """The hub's parquet export of one split: ``hf://datasets/<path>@refs%2Fconvert%2Fparquet/<config>/<split>/*.parquet``."""
    return f"hf://datasets/{path}@refs%2Fconvert%2Fparquet/{config or 'default'}/{split}/*.parquet"


JOIN_KEYS = ("column", "item", "sep")


def check_join_spec(name: str, join: Any) -> None:
    """Validate ``datasets.<name>.join`` (see the module docstring)."""
    where = f"datasets.{name}.join"
    if not isinstance(join, Mapping) or not join:
        raise ConfigError(
            f"{where}: expected a mapping like {{tactics: {{column: traced_tactics, item: '{{tactic}}'}}}}, got {join!r}"
        )
    for field_name, rule in join.items():
        if not isinstance(field_name, str) or not field_name.isidentifier():
            raise ConfigError(f"{where}: field names must be identifiers, got {field_name!r}")
        if not isinstance(rule, Mapping):
            raise ConfigError(f"{where}.{field_name}: expected {{column, item, sep}}, got {rule!r}")
        unknown = sorted(set(rule) - set(JOIN_KEYS))
        if unknown:
            raise ConfigError(f"{where}.{field_name}.{unknown[0]}: unknown key (allowed: {list(JOIN_KEYS)})")
        for key in ("column", "item"):
            if not isinstance(rule.get(key), str) or not rule[key]:
                raise ConfigError(f"{where}.{field_name}.{key}: expected a non-empty string, got {rule.get(key)!r}")
        if not isinstance(rule.get("sep", "\n"), str):
            raise ConfigError(f"{where}.{field_name}.sep: expected a string, got {rule['sep']!r}")
        template_fields(rule["item"], f"{where}.{field_name}.item")


def join_fields(
    row: Mapping[str, Any], join: Mapping[str, Mapping[str, str]], dataset: str, index: int
) -> dict[str, Any]:
    """``row`` plus one joined text field per ``join`` rule (see the module docstring)."""
    out = dict(row)
    for field_name, rule in join.items():
        column = rule["column"]
        items = row.get(column)
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            raise DataError(
                f"dataset {dataset}: join '{field_name}' needs a list in column '{column}', "
                f"row {index} holds {type(items).__name__}"
            )
        parts = []
        for item in items:
            values = item if isinstance(item, Mapping) else {"value": item}
            try:
                parts.append(rule["item"].format_map(values))
            except KeyError as exc:
                raise DataError(
                    f"dataset {dataset}: join '{field_name}', row {index}: the elements of "
                    f"'{column}' have no field {exc} (fields {sorted(values)})"
                ) from exc
        out[field_name] = rule.get("sep", "\n").join(parts)
    return out


def check_hf_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Validate the hf-specific keys."""
    if not isinstance(spec.get("path"), str) or not spec["path"]:
        raise ConfigError(
            f"datasets.{name}.path: expected a hub dataset id or builder name, got {spec.get('path')!r}"
        )
    has_split, has_splits = spec.get("split") is not None, spec.get("splits") is not None
    if has_split == has_splits:
        raise ConfigError(
            f"datasets.{name}.split: give split (one hub split) or splits (hub split per split), one of them"
        )
    if has_split and not isinstance(spec["split"], str):
        raise ConfigError(
            f"datasets.{name}.split: for source hf, the hub split name (fractions go under datasets.{name}.fractions), got {spec['split']!r}"
        )
    if has_splits:
        splits = spec["splits"]
        if not isinstance(splits, Mapping) or not splits:
            raise ConfigError(
                f"datasets.{name}.splits: expected a mapping like {{validation: validation, test: test}}, got {splits!r}"
            )
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown:
            raise ConfigError(
                f"datasets.{name}.splits: unknown split(s) {unknown} (allowed: {list(SPLITS)})"
            )
        for key, value in splits.items():
            if not isinstance(value, str):
                raise ConfigError(
                    f"datasets.{name}.splits.{key}: expected a hub split name, got {value!r}"
                )
        if spec.get("fractions") is not None:
            raise ConfigError(
                f"datasets.{name}.fractions: only with split (splits are used as given)"
            )
    if spec.get("template") is not None and spec.get("text_field") is not None:
        raise ConfigError(f"datasets.{name}.template: give template or text_field, not both")
    limit = spec.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"datasets.{name}.limit: expected a positive integer, got {limit!r}")
    if spec.get("streaming") is not None and not isinstance(spec["streaming"], bool):
        raise ConfigError(
            f"datasets.{name}.streaming: expected true or false, got {spec['streaming']!r}"
        )
    if spec.get("join") is not None:
        check_join_spec(name, spec["join"])


def _load(spec: Mapping[str, Any], hub_split: str, dataset: str) -> tuple[Any, bool]:
    """``load_dataset`` for one hub split; on a loading-script error, the parquet export once.

    Returns the dataset and whether the export was used.
    """
    import datasets

    streaming = bool(spec.get("streaming", False))
    kwargs = {k: spec[k] for k in LOAD_KEYS if spec.get(k) is not None}
    try:
        return datasets.load_dataset(
            spec["path"], split=hub_split, streaming=streaming, **kwargs
        ), False
    except Exception as exc:  # datasets raises many types; all are reported or retried here
        if not is_script_error(exc):
            raise _load_error(dataset, spec["path"], hub_split, exc) from exc
        first_error = exc
    base = re.split(r"[\[+]", hub_split, maxsplit=1)[0].strip()
    data_files = {base: parquet_export_url(spec["path"], spec.get("name"), base)}
    log.warning(
        "dataset %s: %s needs a loading script (%s); trying the parquet export %s",
        dataset,
        spec["path"],
        str(first_error).splitlines()[0],
        data_files[base],
    )
    extra = {"cache_dir": spec["cache_dir"]} if spec.get("cache_dir") is not None else {}
    try:
        return (
            datasets.load_dataset(
                "parquet", data_files=data_files, split=hub_split, streaming=streaming, **extra
            ),
            True,
        )
    except Exception as exc:
        raise _load_error(dataset, f"{spec['path']} (parquet export)", hub_split, exc) from exc


def _load_error(dataset: str, path: str, split: str, exc: BaseException) -> DataError:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return DataError(
        f"dataset {dataset}: load_dataset({path!r}, split={split!r}) failed: {type(exc).__name__}: {first_line}"
    )


def load_hub_split(
    spec: Mapping[str, Any], hub_split: str, dataset: str
) -> tuple[list[Document], dict[str, Any]]:
    """Documents of one hub split and what was loaded (rows read, columns, export used)."""
    ds, exported = _load(spec, hub_split, dataset)
    limit = spec.get("limit")
    if limit is not None:
        ds = ds.take(limit) if spec.get("streaming") else ds.select(range(min(limit, len(ds))))
    rows: Iterator[Mapping[str, Any]] = iter(ds)
    first = next(rows, None)
    columns = list(ds.column_names or (first.keys() if first is not None else []))
    template = spec.get("template")
    text_field = None if template is not None else spec.get("text_field", "text")
    needed = template_fields(template, f"datasets.{dataset}.template") if template else [text_field]
    if spec.get("group_field"):
        needed.append(spec["group_field"])
    what = f"{spec['path']} split {hub_split!r}"
    log.info("dataset %s: %s has columns %s", dataset, what, columns)
    join = spec.get("join") or {}
    if columns:
        check_columns([r["column"] for r in join.values()], columns, dataset, f"the join of {what}")
        clash = sorted(set(join) & set(columns))
        if clash:
            raise DataError(f"dataset {dataset}: join field(s) {clash} would hide columns of {what}")
        check_columns(needed, [*columns, *join], dataset, f"the template of {what}" if template else what)
    counted = _Counter(itertools.chain([] if first is None else [first], rows))
    if join:
        counted_rows: Iterator[Mapping[str, Any]] = (
            join_fields(row, join, dataset, i) for i, row in enumerate(counted)
        )
    else:
        counted_rows = iter(counted)
    groups = (f"{hub_split}:{i}" for i in itertools.count())
    docs = render_rows(
        counted_rows, dataset, template, text_field, spec.get("group_field"), groups, what
    )
    log.info("dataset %s: loaded %d rows (%d non-empty) of %s", dataset, counted.n, len(docs), what)
    info = {
        "hub_split": hub_split,
        "rows": counted.n,
        "documents": len(docs),
        "columns": columns,
        "parquet_export": exported,
    }
    return docs, info


class _Counter:
    """An iterator wrapper that counts the items it passed on."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items, self.n = items, 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.n += 1
            yield item


def load_hf(name: str, spec: Mapping[str, Any]) -> Loaded:
    """Documents from ``datasets.load_dataset``: one hub split to be cut, or hub splits as given."""
    if spec.get("split") is not None:
        docs, info = load_hub_split(spec, str(spec["split"]), name)
        return Loaded(documents=docs, details={"loaded": {str(spec["split"]): info}})
    presplit: dict[str, list[Document]] = {}
    loaded: dict[str, Any] = {}
    for split, hub_split in spec["splits"].items():
        presplit[split], loaded[split] = load_hub_split(spec, str(hub_split), name)
    return Loaded(presplit=presplit, details={"loaded": loaded})

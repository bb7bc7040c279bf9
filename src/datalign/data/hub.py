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

Row values follow the rules of :mod:`datalign.data.records`: a template (or
join item) field must hold a string or a number, a ``text_field`` a string (a
null text is dropped and counted); anything else is an error naming the split,
the row and the field, or with ``on_invalid: skip`` the row is skipped and
counted in the manifest (``loaded.<split>.invalid_rows``).

``datasets`` 4.0 and later refuse repositories with a loading script; on that
error the hub's parquet export (``refs/convert/parquet``) is tried once. Any
other load error is reported in one line with its underlying cause (not the
``DatasetGenerationError`` that wraps it), the data file being read, and for a
local JSON Lines file the line that does not fit (see :func:`describe_load_error`).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from datalign.core.errors import ConfigError, DataError
from datalign.data.records import (
    Document,
    InvalidValueError,
    Loaded,
    RowReport,
    Template,
    check_columns,
    render_rows,
    template_fields,
)
from datalign.data.split import SPLITS

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


@functools.lru_cache(maxsize=64)
def _item_template(item: str, where: str) -> Template:
    return Template(item, where)


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
        item_template = _item_template(rule["item"], f"datasets.{dataset}.join.{field_name}.item")
        for k, item in enumerate(items):
            values = item if isinstance(item, Mapping) else {"value": item}
            try:
                parts.append(item_template.render(values))
            except InvalidValueError as exc:
                inner = exc.field_name or "(item)"
                raise InvalidValueError(
                    f"{column}[{k}].{inner}", exc.value, exc.expected, exc.why
                ) from None
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
    return DataError(
        f"dataset {dataset}: load_dataset({path!r}, split={split!r}) failed: {describe_load_error(exc)}"
    )


# Wrappers whose message says nothing of the cause (the cause is chained below them).
_WRAPPER_MESSAGES = ("An error occurred while generating the dataset",)
_MESSAGE_CHARS = 500


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."


def _says_nothing(exc: BaseException) -> bool:
    message = str(exc).strip()
    return not message or message in _WRAPPER_MESSAGES


def exception_chain(exc: BaseException, causes_only: bool = False) -> list[BaseException]:
    """``exc`` and the exceptions below it: its ``__cause__``, else its unsuppressed
    ``__context__`` (with ``causes_only``, the context only below an exception whose
    message says nothing: an exception raised while handling another is not caused by it)."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__ or (causes_only and not _says_nothing(current)):
            current = None
        else:
            current = current.__context__
    return chain


def _frames_innermost_first(exc: BaseException) -> list[Any]:
    frames = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames[::-1]


def _where_it_failed(chain: list[BaseException]) -> tuple[str | None, str | None, Any]:
    """The data file a ``datasets`` builder was reading when it failed, the column it was
    casting and the type it was casting to, from the frames of the traceback (best effort:
    None where not found)."""
    file = column = target = None
    for exc in reversed(chain):  # the root cause first
        for frame in _frames_innermost_first(exc):
            local = frame.f_locals
            code = frame.f_code
            if file is None and code.co_name.startswith("_generate"):
                value = local.get("file")
                if isinstance(value, str | os.PathLike):
                    file = str(value)
            in_table = code.co_filename.replace(os.sep, "/").endswith("datasets/table.py")
            if column is None and in_table and isinstance(local.get("name"), str) and "feature" in local:
                column = local["name"]
            if target is None and code.co_name in ("cast_table_to_schema", "table_cast"):
                target = local.get("schema")
    target_type = None
    if column is not None and target is not None:
        try:
            target_type = target.field(column).type
        except (KeyError, AttributeError, TypeError):
            target_type = None
    return file, column, target_type


def _misfit_line(path: str, column: str | None, target_type: Any) -> str | None:
    """``line L (...)``: the first line of a local JSON Lines file that is not JSON, or
    whose ``column`` cannot become ``target_type``; None when none is found."""
    import pyarrow as pa

    from datalign.data.records import describe_value

    if not os.path.isfile(path) or os.path.getsize(path) > 2**31:
        return None
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            stripped = raw.strip()
            if not stripped:
                continue
            if lineno == 1 and stripped.startswith(b"["):
                return None  # a JSON array, not JSON Lines
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                return f"line {lineno} column {exc.colno} (invalid JSON: {exc.msg})"
            except ValueError as exc:  # bytes that are not UTF-8
                return f"line {lineno} (not JSON: {exc})"
            if column is None or target_type is None or not isinstance(obj, dict):
                continue
            value = obj.get(column)
            try:
                pa.array([value], type=target_type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                return f"line {lineno} (column '{column}' holds {describe_value(value)}, not {target_type})"
    return None


def describe_load_error(exc: BaseException) -> str:
    """One line for a ``load_dataset`` failure: ``[<file>[, line L (...)]: ]<Type>: <cause>``.

    The cause is the innermost exception of the chain, not the
    ``DatasetGenerationError`` wrapping it (for a ``DatasetGenerationCastError``
    its own explanation, which names the columns). The file is the one the
    builder was reading; for a local JSON Lines file the first line that is not
    JSON or whose column does not fit the type ``datasets`` settled on is found
    by reading the file again.
    """
    chain = exception_chain(exc)
    file, column, target_type = _where_it_failed(chain)
    cast = next((e for e in chain if type(e).__name__ == "DatasetGenerationCastError"), None)
    if cast is not None:
        text = str(cast)
        found = re.search(r"All the data files must have the same columns, but (at some point [^\n]*)", text)
        cause = f"{type(cast).__name__}: not every data file has the same columns: " + (
            found.group(1) if found else _one_line(text)
        )
        using = re.search(r"generating data using\s+(\S[^\n]*)", text)
        if file is None and using:
            file = using.group(1).strip()
    else:
        # The innermost cause with something to say (a bare wrapper says nothing).
        causes = exception_chain(exc, causes_only=True)
        telling = [e for e in causes if not _says_nothing(e)]
        root = telling[-1] if telling else causes[-1]
        message = _one_line(str(root))
        cause = f"{type(root).__name__}: {message}" if message else type(root).__name__
    hint = ""
    if "column names don't match" in cause or cast is not None:
        hint = "; every data file of a split must have the same columns"
    elif "cast" in cause.lower():
        hint = (
            "; datasets types each column by the first data it reads (a column null throughout "
            "the first file is typed null), so give the column one type in every file, or read "
            "local files with source: local"
        )
    if file is None:
        return cause + hint
    where = file
    if file.lower().endswith((".json", ".jsonl", ".ndjson")) and os.path.isfile(file):
        line = _misfit_line(file, column, target_type)
        if line:
            where = f"{file}, {line}"
    return f"{where}: {cause}{hint}"


def _guarded(rows: Iterator[Any], dataset: str, path: str, split: str) -> Iterator[Any]:
    """``rows`` with an error raised while reading them (a streamed split reads lazily)
    reported like a load error."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # datasets raises many types; all are reported in one line
            raise _load_error(dataset, path, split, exc) from exc
        yield row


def _single_data_file(spec: Mapping[str, Any], hub_split: str) -> str | None:
    files = spec.get("data_files")
    if isinstance(files, Mapping):
        files = files.get(re.split(r"[\[+]", hub_split, maxsplit=1)[0].strip())
    if isinstance(files, list | tuple) and len(files) == 1:
        files = files[0]
    return str(files) if isinstance(files, str | os.PathLike) else None


def load_hub_split(
    spec: Mapping[str, Any], hub_split: str, dataset: str
) -> tuple[list[Document], dict[str, Any]]:
    """Documents of one hub split and what was loaded (rows read, columns, export used,
    rows dropped or skipped)."""
    ds, exported = _load(spec, hub_split, dataset)
    limit = spec.get("limit")
    if limit is not None:
        ds = ds.take(limit) if spec.get("streaming") else ds.select(range(min(limit, len(ds))))
    rows: Iterator[Mapping[str, Any]] = _guarded(iter(ds), dataset, spec["path"], hub_split)
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

    def joined(row: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        return join_fields(row, join, dataset, index)

    single = _single_data_file(spec, hub_split)
    report = RowReport()
    groups = (f"{hub_split}:{i}" for i in itertools.count())
    docs = render_rows(
        counted,
        dataset,
        template,
        text_field,
        spec.get("group_field"),
        groups,
        f"{what} (file {single})" if single else what,
        on_invalid=spec.get("on_invalid") or "error",
        report=report,
        transform=joined if join else None,
    )
    log.info("dataset %s: loaded %d rows (%d non-empty) of %s", dataset, counted.n, len(docs), what)
    report.log_summary(dataset, what)
    info = {
        "hub_split": hub_split,
        "rows": counted.n,
        "documents": len(docs),
        "columns": columns,
        "parquet_export": exported,
        **{k: v for k, v in report.details().items() if k not in ("rows", "documents")},
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

"""A user's own files: JSON, JSON Lines, Parquet, CSV/TSV, or plain text.

``path`` is a file, a directory (every supported file below it) or a glob,
relative to the working directory. Table formats give one document per row,
from ``text_field`` (default ``text``) or a ``template`` over the columns;
plain text gives one document per file. A row's group is its ``group_field``
value when given, else ``<file>:<row index>``; a text file's group is its path.

Text files are decoded by the policy of :mod:`datalign.data.records`
(``encoding``, default strict UTF-8; ``errors: replace`` or
``fallback_encoding`` to accept bad bytes, counted in the manifest's
``decoding``), and row values follow its rules (``on_invalid``: ``error`` or
``skip``). JSON Lines are split at ``\\n`` only, so a string may hold U+2028,
U+2029 or U+0085 unescaped, as JSON allows; ``\\r\\n`` line ends are fine. An
error in a file names the file, the line (or the row of a Parquet file, the
element of a JSON array) and the cause.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError, DataError
from datalign.data.records import Document, Loaded, RowReport, TextDecoder, render_rows

log = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".md": "txt",
}


def check_local_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Validate the local-specific keys."""
    if not isinstance(spec.get("path"), str | os.PathLike):
        raise ConfigError(
            f"datasets.{name}.path: expected a file, directory or glob, got {spec.get('path')!r}"
        )
    fmt = spec.get("format")
    if fmt is not None and fmt not in set(FORMATS.values()):
        raise ConfigError(
            f"datasets.{name}.format: expected one of {sorted(set(FORMATS.values()))}, got {fmt!r}"
        )
    if spec.get("template") is not None and spec.get("text_field") is not None:
        raise ConfigError(f"datasets.{name}.template: give template or text_field, not both")


def find_files(path: str, fmt: str | None, dataset: str) -> tuple[list[Path], Path]:
    """The files a ``path`` names (sorted) and the directory their names are taken relative to."""
    expanded = os.path.expanduser(str(path))
    if glob.has_magic(expanded):
        files = [Path(p) for p in glob.glob(expanded, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(expanded):
        files = [p for p in Path(expanded).rglob("*") if p.is_file()]
        if fmt is None:
            files = [p for p in files if p.suffix.lower() in FORMATS]
    elif os.path.isfile(expanded):
        files = [Path(expanded)]
    else:
        raise DataError(f"dataset {dataset}: path '{path}' does not exist")
    files = sorted(files, key=lambda p: p.as_posix())
    if not files:
        raise DataError(
            f"dataset {dataset}: no data file found at '{path}' (formats: {sorted(FORMATS)})"
        )
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    return files, root


def _format_of(path: Path, fmt: str | None, dataset: str) -> str:
    if fmt:
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise DataError(f"dataset {dataset}: cannot tell the format of {path} (set format)")
    return found


def json_lines(text: str, where: str) -> tuple[list[Any], list[int]]:
    """The values of a JSON Lines text and their line numbers (1-based; blank lines skipped).

    Lines end at ``\\n`` only: ``str.splitlines`` would also cut at U+2028,
    U+2029, U+0085, ... which JSON strings may hold unescaped. A line that is
    not JSON is a DataError ``<where>, line L column C: invalid JSON (...)``.
    """
    values: list[Any] = []
    lines: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{where}, line {lineno} column {exc.colno}: invalid JSON ({exc.msg})"
            ) from None
        lines.append(lineno)
    return values, lines


def _object_rows(
    values: list[Any], positions: list[str], where: str
) -> list[dict[str, Any]]:
    for value, position in zip(values, positions, strict=True):
        if not isinstance(value, dict):
            kind = "null" if value is None else type(value).__name__
            raise DataError(f"{where}, {position}: a JSON {kind}, expected an object (one row)")
    return values


def read_rows(
    path: Path, fmt: str, dataset: str, decoder: TextDecoder | None = None
) -> tuple[list[dict[str, Any]], Callable[[int], str]]:
    """The rows of one table file as dicts, and where row ``i`` is in the file (``line 7``, ``row 3``).

    A ``.json`` file may hold a list of objects or JSON Lines. Errors name the
    file, the line (or row) and the cause.
    """
    decoder = decoder or TextDecoder(dataset)
    where = f"dataset {dataset}: {path}"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{where}: cannot read as parquet ({type(exc).__name__}: {exc})") from exc
        return rows, lambda i: f"row {i}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{where}: cannot read ({exc})") from exc
    text = decoder.decode(data, str(path))
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
        rows, lines = [], []
        try:
            reader.fieldnames  # noqa: B018 (reads the header line)
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    break
                rows.append(row)
                lines.append(start)
        except csv.Error as exc:
            raise DataError(f"{where}, line {reader.line_num}: invalid {fmt} ({exc})") from exc
        return rows, lambda i: f"line {lines[i]}"
    if fmt == "json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            if text.lstrip().startswith("["):
                raise DataError(
                    f"{where}, line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})"
                ) from None
            obj = None  # many ".json" files are JSON Lines
        if isinstance(obj, list):
            rows = _object_rows(obj, [f"element {i}" for i in range(len(obj))], where)
            return rows, lambda i: f"element {i}"
        if obj is not None and len([ln for ln in text.split("\n") if ln.strip()]) > 1:
            raise DataError(f"{where}: holds one JSON {type(obj).__name__}, not a list of objects or JSON Lines")
    values, lines = json_lines(text, where)
    rows = _object_rows(values, [f"line {n}" for n in lines], where)
    return rows, lambda i: f"line {lines[i]}"


def load_local(name: str, spec: Mapping[str, Any]) -> Loaded:
    """Documents from local files: one per table row (text_field or template) or per text file."""
    fmt = spec.get("format")
    files, root = find_files(str(spec["path"]), fmt, name)
    template = spec.get("template")
    text_field = None if template is not None else spec.get("text_field", "text")
    group_field = spec.get("group_field")
    on_invalid = spec.get("on_invalid") or "error"
    decoder = TextDecoder.from_spec(name, spec)
    report = RowReport()
    docs: list[Document] = []
    columns: dict[str, list[str]] = {}
    text_files = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        file_fmt = _format_of(path, fmt, name)
        if file_fmt == "txt":
            text_files += 1
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DataError(f"dataset {name}: {path}: cannot read ({exc})") from exc
            text = decoder.decode(data, str(path))
            if text.strip():
                docs.append(Document(text, rel))
            continue
        rows, locate = read_rows(path, file_fmt, name, decoder)
        if rows:
            columns[rel] = list(rows[0])
            log.info("dataset %s: %s has %d rows, columns %s", name, rel, len(rows), columns[rel])
        default_groups: Iterator[str] = (f"{rel}:{i}" for i in itertools.count())
        docs.extend(
            render_rows(
                rows,
                name,
                template,
                text_field,
                group_field,
                default_groups,
                f"file {path}",
                on_invalid=on_invalid,
                report=report,
                locate=locate,
            )
        )
    report.log_summary(name, str(spec["path"]))
    decoder.log_summary()
    details: dict[str, Any] = {
        "files": [p.as_posix() for p in files],
        "columns": columns,
        "text_files": text_files,
        **report.details(),
        "documents": len(docs),
        "decoding": decoder.details(),
    }
    return Loaded(documents=docs, details=details)

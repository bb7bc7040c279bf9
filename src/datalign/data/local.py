"""A user's own files: JSON, JSON Lines, Parquet, CSV/TSV, or plain text.

``path`` is a file, a directory (every supported file below it) or a glob,
relative to the working directory. Table formats give one document per row,
from ``text_field`` (default ``text``) or a ``template`` over the columns;
plain text gives one document per file. A row's group is its ``group_field``
value when given, else ``<file>:<row index>``; a text file's group is its path.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from datalign.data.records import Document, Loaded, decode_text, render_rows
from datalign.core.errors import ConfigError, DataError

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


def read_rows(path: Path, fmt: str, dataset: str) -> list[dict[str, Any]]:
    """The rows of one table file as dicts (a ``.json`` file may hold a list of objects or JSON Lines)."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        if fmt in ("csv", "tsv"):
            with open(path, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh, delimiter="\t" if fmt == "tsv" else ","))
        text = path.read_text(encoding="utf-8")
        if fmt == "json":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                obj = None  # many ".json" files are JSON Lines
            if obj is not None:
                if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
                    raise DataError(f"dataset {dataset}: {path} holds no list of objects")
                return obj
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise DataError(f"dataset {dataset}: cannot read {path} as {fmt} ({exc})") from exc
    if not all(isinstance(r, dict) for r in rows):
        raise DataError(f"dataset {dataset}: {path} has a line that is not a JSON object")
    return rows


def load_local(name: str, spec: Mapping[str, Any]) -> Loaded:
    """Documents from local files: one per table row (text_field or template) or per text file."""
    fmt = spec.get("format")
    files, root = find_files(str(spec["path"]), fmt, name)
    template = spec.get("template")
    text_field = None if template is not None else spec.get("text_field", "text")
    group_field = spec.get("group_field")
    docs: list[Document] = []
    columns: dict[str, list[str]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        file_fmt = _format_of(path, fmt, name)
        if file_fmt == "txt":
            text, _ = decode_text(path.read_bytes())
            if text.strip():
                docs.append(Document(text, rel))
            continue
        rows = read_rows(path, file_fmt, name)
        if rows:
            columns[rel] = list(rows[0])
            log.info("dataset %s: %s has %d rows, columns %s", name, rel, len(rows), columns[rel])
        default_groups: Iterator[str] = (f"{rel}:{i}" for i in itertools.count())
        docs.extend(
            render_rows(
                rows, name, template, text_field, group_field, default_groups, f"file {path}"
            )
        )
    details = {"files": [p.as_posix() for p in files], "columns": columns}
    return Loaded(documents=docs, details=details)

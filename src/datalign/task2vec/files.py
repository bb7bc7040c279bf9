"""A user's text files as lists of documents, for the public API and the command line.

One file is one dataset. Its documents, by format (from the file's suffix):

- ``.jsonl`` / ``.ndjson`` / ``.json`` (JSON Lines, or a JSON list of objects)
  and ``.parquet``: one document per row, the row's ``text_field`` (default
  ``"text"``);
- ``.csv`` / ``.tsv``: likewise, the column ``text_field`` (header line first);
- ``.txt`` / ``.md``: the whole file is **one document** (as the workflow's
  ``source: local`` reads text files): Task2Vec cuts documents into sequences
  of ``seq_len`` tokens anyway, so a long file gives many sequences. For one
  document per line, write JSON Lines.

Rows whose text is null or blank are dropped. Every problem is a one-line
:class:`~datalign.core.errors.DataError` naming the file (and the line or row):
a missing file, an empty one, an unknown format, a field that is not there
(with the fields that are), a value that is not text.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from datalign.core.errors import DataError

TABLE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
                 ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}
TEXT_FORMATS = {".txt", ".md"}
EMBEDDING_SUFFIX = ".npz"


def is_embedding_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Task2Vec embedding file (``.npz``) rather than texts."""
    return Path(path).suffix.lower() == EMBEDDING_SUFFIX


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _rows(path: Path, fmt: str, data: bytes) -> tuple[list[Any], list[str]]:
    """The file's rows and where each is (``line 3``, ``row 2``)."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{path}: cannot read as parquet ({type(exc).__name__}: {exc})") from None
        return rows, [f"row {i}" for i in range(len(rows))]
    text = _decode(data, path)
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise DataError(f"{path}, line {reader.line_num}: invalid {fmt} ({exc})") from None
        return rows, [f"row {i + 1}" for i in range(len(rows))]
    if fmt == "json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from None
        return rows, [f"element {i}" for i in range(len(rows))]
    from datalign.data.local import json_lines

    values, lines = json_lines(text, str(path))
    return values, [f"line {n}" for n in lines]


def read_texts(path: str | os.PathLike, text_field: str = "text") -> list[str]:
    """The documents of one file (see the module docstring); at least one, or a DataError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a file (one file per dataset)")
    suffix = p.suffix.lower()
    if suffix not in TABLE_FORMATS and suffix not in TEXT_FORMATS:
        known = ", ".join(sorted([*TABLE_FORMATS, *TEXT_FORMATS]))
        raise DataError(f"{p}: unknown format '{suffix or '(no suffix)'}' (known: {known}; embeddings: .npz)")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if not data.strip():
        raise DataError(f"{p}: empty file")
    if suffix in TEXT_FORMATS:
        return [_decode(data, p)]
    rows, where = _rows(p, TABLE_FORMATS[suffix], data)
    if not rows:
        raise DataError(f"{p}: empty file (no rows)")
    texts: list[str] = []
    fields: dict[str, None] = {}
    for row, loc in zip(rows, where, strict=True):
        if not isinstance(row, dict):
            kind = "null" if row is None else type(row).__name__
            raise DataError(f"{p}, {loc}: a JSON {kind}, expected an object with a '{text_field}' field")
        fields.update(dict.fromkeys(map(str, row)))
        if text_field not in row:
            raise DataError(f"{p}, {loc}: no field '{text_field}' (fields: {', '.join(fields) or 'none'}); "
                            f"choose one with --text-field")
        value = row[text_field]
        if value is None:
            continue
        if not isinstance(value, str):
            raise DataError(f"{p}, {loc}: field '{text_field}' holds a {type(value).__name__}, expected text")
        if value.strip():
            texts.append(value)
    if not texts:
        raise DataError(f"{p}: field '{text_field}' is blank or null in all {len(rows)} rows")
    return texts

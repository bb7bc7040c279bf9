"""Preference data from a user's files: JSON Lines, JSON or Parquet, in any layout of :mod:`.rows`.

``path`` is a file, a directory (every .jsonl / .json / .parquet below it) or
a glob. Without ``layout`` the layout is read off the first row's columns:
``completion`` + ``label`` -> kto; ``message_id`` + ``parent_id`` -> oasst;
``chosen`` + ``rejected`` -> pairs when there is a prompt column or the
chosen value is a message list, else hh (column names as configured).
Locations in messages are ``<file>, line <n>`` (JSON Lines, 1-based, counting
``"\\n"`` only) or ``<file>, row <n>`` (JSON arrays, Parquet, 1-based).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import DataError
from datalign.data.local import find_files
from datalign.data.preference.oasst import oasst_pairs
from datalign.data.preference.rows import Fields, check_first_row, convert_rows
from datalign.data.preference.source import BuildContext, LoadedPreferences
from datalign.data.preference.storage import iter_jsonl

log = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def file_format(path: Path, fmt: str | None, dataset: str) -> str:
    """The format of one file: ``fmt`` when given, else by its suffix; DataError otherwise."""
    if fmt:
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise DataError(
            f"dataset {dataset}: {path}: not a preference data file (suffixes {sorted(FORMATS)}; or set format)"
        )
    return found


def file_rows(path: Path, fmt: str, dataset: str) -> Iterator[tuple[str, Any]]:
    """``(location, row)`` of every row of one file; a line that is not JSON is a BadRowError row.

    A ``.json`` file holds one JSON array of objects, or else JSON Lines.
    Raises DataError when the file cannot be read at all.
    """
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise DataError(f"dataset {dataset}: {path}: cannot read as parquet ({exc})") from exc
        for i, row in enumerate(table.to_pylist(), 1):
            yield f"{path}, row {i}", row
        return
    if fmt == "json":
        try:
            whole = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            whole = None  # many .json files are JSON Lines
        except OSError as exc:
            raise DataError(f"dataset {dataset}: {path}: cannot read ({exc.strerror})") from exc
        if isinstance(whole, list):
            for i, row in enumerate(whole, 1):
                yield f"{path}, row {i}", row
            return
        if whole is not None and not isinstance(whole, dict):
            raise DataError(f"dataset {dataset}: {path}: holds a JSON {type(whole).__name__}, not rows")
    for number, row in iter_jsonl(path):
        yield f"{path}, line {number}", row


def infer_layout(first: Any, fields: Fields, dataset: str, path: Path) -> str:
    """The layout of a file from its first row (see the module docstring); DataError if none fits."""
    if not isinstance(first, Mapping):
        raise DataError(f"dataset {dataset}: {path}: the first row is not an object")
    keys = set(first)
    if {fields.completion, fields.label} <= keys:
        return "kto"
    if {"message_id", "parent_id"} <= keys:
        return "oasst"
    if {fields.chosen, fields.rejected} <= keys:
        if fields.prompt in keys or isinstance(first.get(fields.chosen), list):
            return "pairs"
        return "hh"
    raise DataError(
        f"dataset {dataset}: {path}: cannot tell the layout from columns {sorted(keys)} "
        f"(expected {fields.prompt}/{fields.completion}/{fields.label} or "
        f"{fields.prompt}/{fields.chosen}/{fields.rejected}); set layout"
    )


def load_local_preferences(spec: Mapping[str, Any], ctx: BuildContext) -> LoadedPreferences:
    """Records from local files (see the module docstring); DataError for a missing path,
    an unreadable file, a missing column, or (with ``on_bad_row: error``) a bad row."""
    files, _root = find_files(str(spec["path"]), spec.get("format"), ctx.name)
    if spec.get("format") is None and Path(str(spec["path"])).expanduser().is_dir():
        # A directory may hold other files (a README, a CSV): keep the preference formats only.
        files = [p for p in files if p.suffix.lower() in FORMATS]
        if not files:
            raise DataError(
                f"dataset {ctx.name}: no {sorted(FORMATS)} file under directory {spec['path']}"
            )
    fields = Fields.from_spec(spec)
    layout = spec.get("layout")
    records: list[Any] = []
    oasst_rows: list[tuple[str, Any]] = []
    columns: dict[str, list[str]] = {}
    for path in files:
        rows = list(file_rows(path, file_format(path, spec.get("format"), ctx.name), ctx.name))
        if not rows:
            continue
        # The first row that parsed as an object tells the layout and columns; a broken
        # first line is then reported as the bad row it is, by line number.
        first = next((row for _, row in rows if isinstance(row, Mapping)), rows[0][1])
        if layout is None:
            layout = infer_layout(first, fields, ctx.name, path)
            log.info("dataset %s: layout %s inferred from %s", ctx.name, layout, path)
        if isinstance(first, Mapping):
            columns[path.as_posix()] = list(first)
        check_first_row(layout, fields, first, columns.get(path.as_posix(), []), ctx.name, f"file {path}")
        if layout == "oasst":
            oasst_rows.extend(rows)
            continue
        records.extend(convert_rows(rows, layout, fields, ctx.log))
    details: dict[str, Any] = {
        "files": [p.as_posix() for p in files],
        "columns": columns,
        "layout": layout,
        "layout_inferred": spec.get("layout") is None,
    }
    if layout == "oasst":
        pairs, counts = oasst_pairs(
            oasst_rows, ctx.log, spec.get("lang"), spec.get("pairing") or "best_vs_rest"
        )
        records.extend(pairs)
        details["oasst"] = counts
    return LoadedPreferences(records=records, details=details)

"""JSON Lines I/O: a strict line reader, and the stored form of a prepared preference split.

The stored form is one **KTO row** per line, keys in this order::

    {"prompt": str, "completion": str, "label": bool, "group": str, "pair": int | null}

KTO rows rather than pairs, because unpaired data (trl-lib/kto-mix-14k, or a
selection that kept one side of a pair) has rows no pair can hold; pairs
survive through the ``pair`` id their two rows share, and unlinked rows pair
up by prompt on reading (:func:`.records.kto_to_pairs`). ``label`` is the
column name TRL's KTOTrainer reads. Lines are UTF-8 with ``ensure_ascii=False``
and end in ``"\\n"``, so the file's SHA-256 identifies its content.

JSON Lines are split on ``"\\n"`` only: a raw U+2028 / U+2029 / U+0085 inside
a JSON string is valid JSON, and ``str.splitlines`` would cut the line there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from datalign.core.errors import DataError
from datalign.data.preference.records import BadRowError, KTORow, kto_to_pairs, label_counts

STORED_KEYS = ("prompt", "completion", "label", "group", "pair")


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` for every non-blank line of a JSON Lines file.

    Line numbers are 1-based and count ``"\\n"`` only. A line that is not
    UTF-8 or not JSON yields a BadRowError (field ``line``) in place of the value,
    so the caller decides whether it is fatal. Raises DataError when the file
    cannot be read.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, BadRowError("line", "not UTF-8", f"byte {exc.start}")
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, BadRowError("line", "not valid JSON", f"{exc.msg} at column {exc.colno}")


def encode_row(row: KTORow) -> bytes:
    """The exact bytes of one stored line (see the module docstring)."""
    obj = {
        "prompt": row.prompt,
        "completion": row.completion,
        "label": row.desirable,
        "group": row.group,
        "pair": row.pair,
    }
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def split_stats(rows: list[KTORow]) -> dict[str, Any]:
    """Counts of a split: rows, desirable, undesirable, pairs (as read back with the
    default ``zip`` pairing), unpaired rows, groups, prompts, characters (code points of
    prompts and completions)."""
    good, bad = label_counts(rows)
    pairs, unpaired = kto_to_pairs(rows)
    return {
        "rows": len(rows),
        "desirable": good,
        "undesirable": bad,
        "pairs": len(pairs),
        "unpaired_rows": len(unpaired),
        "groups": len({r.group for r in rows}),
        "prompts": len({r.prompt for r in rows}),
        "characters": sum(len(r.prompt) + len(r.completion) for r in rows),
    }


def write_rows(path: Path, rows: Iterable[KTORow]) -> dict[str, Any]:
    """Write stored rows to ``path`` (not atomic by itself: call inside an atomic
    directory); return :func:`split_stats` plus the file's ``sha256``."""
    rows = list(rows)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for row in rows:
            line = encode_row(row)
            digest.update(line)
            fh.write(line)
    return {**split_stats(rows), "sha256": digest.hexdigest()}


def _stored_row(obj: Any) -> KTORow:
    if not isinstance(obj, dict):
        raise BadRowError("line", "not an object", f"got {type(obj).__name__}")
    missing = [k for k in STORED_KEYS if k not in obj]
    if missing:
        raise BadRowError(missing[0], "missing")
    for key in ("prompt", "completion", "group"):
        if not isinstance(obj[key], str):
            raise BadRowError(key, "not a string", f"got {type(obj[key]).__name__}")
    if not isinstance(obj["label"], bool):
        raise BadRowError("label", "not a boolean", f"got {obj['label']!r}")
    pair = obj["pair"]
    if pair is not None and (isinstance(pair, bool) or not isinstance(pair, int)):
        raise BadRowError("pair", "not an integer or null", f"got {pair!r}")
    return KTORow(obj["prompt"], obj["completion"], obj["label"], obj["group"], pair)


def read_rows(path: Path) -> list[KTORow]:
    """The rows of a stored split file; DataError ``<file>, line <n>, field '<f>': ...``
    on the first line that is not a stored row."""
    rows: list[KTORow] = []
    for number, obj in iter_jsonl(path):
        try:
            if isinstance(obj, BadRowError):
                raise obj
            rows.append(_stored_row(obj))
        except BadRowError as problem:
            raise DataError(f"{path}, line {number}, {problem}") from None
    return rows

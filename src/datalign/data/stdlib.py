"""Text from Python's own standard library: source files, and docstring -> code pairs.

The standard library is on every machine, so it gives an offline corpus of
code and an offline stand-in for autoformalization: a function's docstring is
the informal statement, the function's source without its docstring is the
formal one. Left out: test suites, installed packages, the build configuration,
``pydoc_data`` (documentation data, and the separate ``pydoc_topics`` dataset)
and generated codec tables; ``exclude`` adds glob patterns (relative paths).
Every document's group is its top-level
module or package (``json/decoder.py`` -> ``json``), so a module's functions
all land in one split.

The content depends on the Python version that runs it; the manifest records it.

Each file is decoded with the encoding it declares (PEP 263; UTF-8 if none), by
the policy of :mod:`datalign.data.records`: strictly, so a file that is not
valid in its encoding is an error naming it and the byte offset, unless
``errors: replace`` (each invalid sequence becomes U+FFFD; counted in the
manifest's ``decoding`` and logged). Line ends become ``\n``. A file that does
not parse, or whose encoding declaration is not a known codec, is skipped and
counted (``files_unreadable``).
"""

from __future__ import annotations

import ast
import fnmatch
import io
import logging
import platform
import sysconfig
import tokenize
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from datalign.core.errors import ConfigError, DataError
from datalign.data.records import Document, Loaded, TextDecoder, template_fields

log = logging.getLogger(__name__)

KINDS = ("code", "docstring_pairs")
# Directories never read: test suites, installed third-party packages, build leftovers.
EXCLUDED_DIRS = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib-dynload"}
)
# Not library code: the machine's build configuration, and the documentation
# topics (data; also the separate pydoc_topics dataset, which must not leak into code).
EXCLUDED_FILES = ("_sysconfigdata_*.py", "pydoc_data/*")
# Files that say in their head that a tool generated them (the codec tables of
# encodings/, 1.2 MB of repeated mapping tables): data, not code.
GENERATED_MARKERS = ("gencodec.py",)
DEFAULT_TEMPLATE = "{nl}\n{formal}"
PAIR_FIELDS = ("nl", "formal")
PAIR_LIMITS = {
    "min_nl_chars": 8,
    "max_nl_chars": 2000,
    "min_formal_chars": 16,
    "max_formal_chars": 4000,
}


def stdlib_root() -> Path:
    """The directory of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def module_group(relpath: PurePosixPath) -> str:
    """The top-level module or package a file belongs to: ``json/decoder.py`` -> ``json``."""
    return relpath.parts[0] if len(relpath.parts) > 1 else relpath.stem


def stdlib_files(root: Path, exclude: list[str] | None = None) -> list[PurePosixPath]:
    """Relative paths of the library's ``.py`` files, sorted, test suites and ``exclude`` globs left out."""
    patterns = list(EXCLUDED_FILES) + list(exclude or [])
    files: list[PurePosixPath] = []
    for path in root.rglob("*.py"):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        dirs = rel.parts[:-1]
        if any(d in EXCLUDED_DIRS or d.startswith("config-") for d in dirs):
            continue
        if any(fnmatch.fnmatch(rel.name, p) or fnmatch.fnmatch(str(rel), p) for p in patterns):
            continue
        files.append(rel)
    return sorted(files, key=str)


def _read_source(path: Path, decoder: TextDecoder | None = None) -> str | None:
    """A source file's text (see the module docstring), or None when it is skipped."""
    decoder = decoder or TextDecoder("stdlib")
    # tokenize.open honours PEP 263 encoding cookies and reads line ends as "\n".
    try:
        with tokenize.open(path) as fh:
            text = fh.read()
        decoder.files += 1
        return text
    except UnicodeDecodeError:
        pass  # below: the policy names the byte, or replaces and counts
    except SyntaxError:
        pass  # a bad declaration, or bytes that are not UTF-8 in the first two lines
    except OSError as exc:
        log.warning("skipping %s: %s", path, exc)
        return None
    data = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "utf-8"
        else:
            log.warning("skipping %s: %s", path, exc)
            return None
    text = decoder.decode(data, str(path), encoding=encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def is_generated(source: str) -> bool:
    """Whether a file's first 1,000 characters name a code generator (see GENERATED_MARKERS)."""
    head = source[:1000]
    return any(marker in head for marker in GENERATED_MARKERS)


def _strip_indent(line: str, col: int) -> str:
    # Remove the definition's own indentation; keep lines that have less (string contents).
    return line[col:] if line[:col].strip() == "" else line


def function_pairs(source: str) -> list[tuple[str, str, str]]:
    """Every function or method with a docstring, as ``(qualified name, docstring, code)``.

    The docstring is cleaned (``inspect.cleandoc`` rules, stripped). The code
    is the function's source (decorators included) with the docstring
    statement's lines removed, blank lines right after it dropped, and the
    definition's indentation removed. Functions whose body is only the
    docstring, or whose docstring shares a line with other code, are skipped.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    pairs: list[tuple[str, str, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = f"{prefix}{child.name}"
                pair = _pair(child, lines)
                if pair is not None:
                    pairs.append((qualname, *pair))
                visit(child, f"{qualname}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return pairs


def _pair(fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> tuple[str, str] | None:
    doc = ast.get_docstring(fn, clean=True)
    if not doc or len(fn.body) < 2:
        return None
    ds = fn.body[0]
    first, last = ds.lineno - 1, (ds.end_lineno or ds.lineno) - 1
    if ds.lineno == fn.lineno or fn.body[1].lineno - 1 <= last:
        return None
    if lines[first][: ds.col_offset].strip() or lines[last][ds.end_col_offset or 0 :].strip():
        return None
    start = min([fn.lineno] + [d.lineno for d in fn.decorator_list]) - 1
    end = (fn.end_lineno or fn.lineno) - 1
    after = last + 1
    while after <= end and not lines[after].strip():
        after += 1
    kept = lines[start:first] + lines[after : end + 1]
    code = "\n".join(_strip_indent(line, fn.col_offset) for line in kept).rstrip()
    return doc.strip(), code


def check_stdlib_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Validate the stdlib-specific keys of a dataset spec."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"datasets.{name}.kind: expected one of {list(KINDS)}, got {kind!r}")
    template = spec.get("template")
    if kind == "docstring_pairs" and template is not None:
        if not isinstance(template, str):
            raise ConfigError(f"datasets.{name}.template: expected a string, got {template!r}")
        unknown = [
            f
            for f in template_fields(template, f"datasets.{name}.template")
            if f not in PAIR_FIELDS
        ]
        if unknown:
            raise ConfigError(
                f"datasets.{name}.template: unknown field(s) {unknown} (available: {list(PAIR_FIELDS)})"
            )
    if kind == "code" and template is not None:
        raise ConfigError(f"datasets.{name}.template: only kind docstring_pairs takes a template")
    exclude = spec.get("exclude")
    if exclude is not None and (
        not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude)
    ):
        raise ConfigError(
            f"datasets.{name}.exclude: expected a list of glob patterns, got {exclude!r}"
        )


def load_stdlib(name: str, spec: Mapping[str, Any]) -> Loaded:
    """Documents from the standard library: one per file (``code``) or one per
    documented function (``docstring_pairs``, rendered by ``template`` with
    fields ``{nl}`` and ``{formal}``), in sorted file order, limited by
    ``max_files`` files and ``max_rows`` documents."""
    root = stdlib_root()
    files = stdlib_files(root, spec.get("exclude"))
    if spec.get("max_files") is not None:
        files = files[: int(spec["max_files"])]
    if not files:
        raise DataError(f"dataset {name}: no standard-library files found under {root}")
    kind = spec["kind"]
    template = spec.get("template") or DEFAULT_TEMPLATE
    limits = {k: int(spec.get(k, v)) for k, v in PAIR_LIMITS.items()}
    max_rows = spec.get("max_rows")
    decoder = TextDecoder(name, errors=spec.get("errors") or "strict")
    docs: list[Document] = []
    files_read = skipped_unparsable = skipped_generated = filtered = 0
    for rel in files:
        if max_rows is not None and len(docs) >= max_rows:
            break
        source = _read_source(root / rel, decoder)
        if source is None:
            skipped_unparsable += 1
            continue
        if is_generated(source):
            skipped_generated += 1
            continue
        group = module_group(rel)
        if kind == "code":
            files_read += 1
            if source.strip():
                docs.append(Document(source, group))
            continue
        try:
            pairs = function_pairs(source)
        except SyntaxError as exc:
            log.warning("skipping %s: %s", rel, exc)
            skipped_unparsable += 1
            continue
        files_read += 1
        for _qualname, nl, formal in pairs:
            if not (
                limits["min_nl_chars"] <= len(nl) <= limits["max_nl_chars"]
                and limits["min_formal_chars"] <= len(formal) <= limits["max_formal_chars"]
            ):
                filtered += 1
                continue
            docs.append(Document(template.format(nl=nl, formal=formal), group))
    if max_rows is not None:
        docs = docs[: int(max_rows)]
    details: dict[str, Any] = {
        "stdlib_root": str(root),
        "python": platform.python_version(),
        "files_read": files_read,
        "files_unreadable": skipped_unparsable,
        "files_generated": skipped_generated,
        "decoding": {k: v for k, v in decoder.details().items() if k != "encoding"},
    }
    decoder.log_summary()
    if kind == "docstring_pairs":
        details["pairs_filtered_by_length"] = filtered
        details["length_limits"] = limits
    log.info("dataset %s: %d %s documents from %d stdlib files", name, len(docs), kind, files_read)
    return Loaded(documents=docs, details=details)

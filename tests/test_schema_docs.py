"""Every key a data source reads is in its schema, with a description and a default.

The code reads a registry entry through ``spec.get("key")`` / ``spec["key"]``; a
key read there but missing from the schema is a key users can only learn from
the code (issue 12: ``group_field`` was one). This test reads the code's keys
from its syntax tree and holds each schema to them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from datalign.data import prepare
from datalign.data.hub import LOAD_KEYS
from datalign.studies import config_schema

DATA = Path(prepare.__file__).resolve().parent
TEXT_SOURCES = tuple(prepare.SOURCE_KEYS)


def keys_read(path: Path) -> set[str]:
    """String keys read from a variable named ``spec`` in a module: get(), [], ``in``."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "spec" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
              and node.value.id == "spec" and isinstance(node.slice, ast.Constant)
              and isinstance(node.slice.value, str)):
            keys.add(node.slice.value)
        elif (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In)
              and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
              and isinstance(node.comparators[0], ast.Name) and node.comparators[0].id == "spec"):
            keys.add(node.left.value)
    return keys


def text_entry_schema() -> dict:
    return config_schema()["properties"]["datasets"]["additionalProperties"]


def required_for(entry: dict, source: str) -> set[str]:
    required = set(entry.get("required", []))
    for branch in entry.get("allOf", []):
        if branch["if"]["properties"]["source"]["const"] == source:
            required |= set(branch["then"].get("required", []))
    return required


@pytest.mark.parametrize("source", TEXT_SOURCES)
def test_every_key_of_a_text_source_is_documented_with_its_default(source):
    entry = text_entry_schema()
    props = entry["properties"]
    required = required_for(entry, source)
    for key in sorted(prepare.COMMON_KEYS | prepare.SOURCE_KEYS[source]):
        assert key in props, f"datasets.<name>.{key} (source {source}) is not in the schema"
        text = props[key].get("description", "")
        sources = text.split(":", 1)[0]
        assert source in sources or "every source" in sources, (
            f"the schema's description of {key} does not say that source {source} takes it: {sources!r}")
        assert key in required or "default" in text.lower(), f"{key}: no default stated for source {source}"


def test_the_text_schema_lists_no_key_that_no_source_takes():
    allowed = set(prepare.COMMON_KEYS).union(*prepare.SOURCE_KEYS.values())
    assert set(text_entry_schema()["properties"]) <= allowed


MODULE_SOURCES = {
    "hub.py": ("hf",), "local.py": ("local",), "stdlib.py": ("stdlib",), "package.py": ("package",),
    "mixture.py": ("mixture",), "records.py": ("local", "package", "stdlib", "hf"),
    "prepare.py": TEXT_SOURCES, "inputs.py": TEXT_SOURCES, "specs.py": TEXT_SOURCES,
}


@pytest.mark.parametrize("module", sorted(MODULE_SOURCES))
def test_every_key_the_text_loaders_read_is_allowed_and_in_the_schema(module):
    read = keys_read(DATA / module) | (set(LOAD_KEYS) if module == "hub.py" else set())
    sources = MODULE_SOURCES[module]
    allowed = set(prepare.COMMON_KEYS).union(*(prepare.SOURCE_KEYS[s] for s in sources))
    props = set(text_entry_schema()["properties"])
    assert read, f"no key found in {module}: the scan is broken"
    assert read <= allowed, f"{module} reads {sorted(read - allowed)}, which validate_spec rejects"
    assert read <= props, f"{module} reads {sorted(read - props)}, which the schema does not document"


@pytest.mark.parametrize("kind", ["preference", "labelled"])
def test_every_key_the_record_loaders_read_is_in_their_schema(kind):
    schema = yaml.safe_load((DATA / kind / "schema.yaml").read_text(encoding="utf-8"))
    props = schema["properties"]
    read = set().union(*(keys_read(p) for p in sorted((DATA / kind).glob("*.py"))))
    assert read, "the scan found no key"
    assert read <= set(props), f"{kind} code reads {sorted(read - set(props))}, not in its schema.yaml"
    for key in read:
        assert props[key].get("description"), f"{kind} schema: {key} has no description"
        assert key in schema.get("required", []) or "default" in props[key] or \
            "default" in props[key]["description"].lower() or "required" in props[key]["description"].lower(), \
            f"{kind} schema: {key} states no default"

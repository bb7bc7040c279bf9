"""prepare_dataset: the split rule, the manifest, atomic output, spec validation."""

from __future__ import annotations

import hashlib
import json

import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.core.io import read_json
from datalign.data import prepare_dataset, read_documents, read_split, validate_spec

SPLITS = ("train", "validation", "test")


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(
            json.dumps({"text": f"doc {i} " + "x" * (i % 17), "g": f"g{i % 97}"}) + "\n"
            for i in range(600)
        )
    )
    return path


def _spec(path, **extra):
    return {
        "source": "local",
        "path": str(path),
        "group_field": "g",
        "split": {"validation": 0.1, "test": 0.2},
        **extra,
    }


def test_split_follows_the_hash_rule(tmp_path, rows_file):
    seed, name = 99, "rows"
    prepare_dataset(name, _spec(rows_file), tmp_path / "out", seed)
    for split in SPLITS:
        for doc in read_documents(tmp_path / "out", split):
            u = (
                int(hashlib.sha256(f"{seed}:{name}:{doc.group}".encode()).hexdigest()[:16], 16)
                / 2**64
            )
            expected = "test" if u < 0.2 else "validation" if u < 0.3 else "train"
            assert split == expected
    sizes = {s: len({d.group for d in read_documents(tmp_path / "out", s)}) for s in SPLITS}
    assert sum(sizes.values()) == 97


def test_manifest_contents(tmp_path, rows_file):
    spec = _spec(rows_file)
    returned = prepare_dataset("rows", spec, tmp_path / "out", 5)
    manifest = read_json(tmp_path / "out" / "manifest.json")
    assert manifest == json.loads(json.dumps(returned))
    assert manifest["name"] == "rows" and manifest["source"] == "local" and manifest["spec"] == spec
    assert manifest["seed"] == 5
    assert manifest["fractions"] == {"validation": 0.1, "test": 0.2}
    assert manifest["provenance"]["seed"] == 5 and manifest["provenance"]["config"] == spec
    assert "datalign_version" in manifest["provenance"]
    total = 0
    for split in SPLITS:
        raw = (tmp_path / "out" / f"{split}.jsonl").read_bytes()
        lines = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        entry = manifest["splits"][split]
        assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
        assert entry["rows"] == len(lines)
        assert entry["characters"] == sum(len(o["text"]) for o in lines)
        assert entry["groups"] == len({o["group"] for o in lines})
        assert entry["provided"] is True
        assert all(set(o) == {"text", "group"} for o in lines)
        assert read_split(tmp_path / "out", split) == [o["text"] for o in lines]
        total += len(lines)
    assert total == 600


def test_order_is_seeded_not_sorted(tmp_path, rows_file):
    prepare_dataset("rows", _spec(rows_file), tmp_path / "a", 5)
    texts = read_split(tmp_path / "a", "train")
    assert texts != sorted(texts) and sorted(texts) == sorted(set(texts))


def test_rewrite_is_atomic_and_failures_leave_nothing(tmp_path, rows_file):
    out = tmp_path / "out"
    prepare_dataset("rows", _spec(rows_file), out, 5)
    (out / "stale.txt").write_text("left from an older run")
    prepare_dataset("rows", _spec(rows_file), out, 6)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "test.jsonl",
        "train.jsonl",
        "validation.jsonl",
    ]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError, match=r"dataset rows: split '(validation|test)' is empty"):
        prepare_dataset("rows", _spec(rows_file, max_rows=1), out, 5)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_length_filters(tmp_path, rows_file):
    prepare_dataset("rows", _spec(rows_file, min_chars=10, max_chars=20), tmp_path / "f", 5)
    lengths = [len(t) for s in SPLITS for t in read_split(tmp_path / "f", s)]
    assert min(lengths) >= 10 and max(lengths) <= 20
    with open(rows_file) as fh:
        expected = sum(10 <= len(json.loads(line)["text"]) <= 20 for line in fh)
    assert len(lengths) == expected


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"source": "ftp"}, "datasets.d.source"),
        ({}, "datasets.d.source"),
        ({"source": "stdlib"}, "datasets.d.kind"),
        ({"source": "stdlib", "kind": "prose"}, "datasets.d.kind"),
        (
            {"source": "stdlib", "kind": "docstring_pairs", "template": "{nl} {code}"},
            "datasets.d.template",
        ),
        ({"source": "package"}, "datasets.d.package"),
        ({"source": "local"}, "datasets.d.path"),
        ({"source": "hf"}, "datasets.d.path"),
        ({"source": "mixture"}, "datasets.d.components"),
        ({"source": "local", "path": "x", "colour": "red"}, "datasets.d.colour"),
        (
            {"source": "local", "path": "x", "split": {"validation": 0.5, "test": 0.5}},
            "datasets.d.split",
        ),
        ({"source": "local", "path": "x", "split": {"valid": 0.1}}, "datasets.d.split"),
        ({"source": "local", "path": "x", "split": {"test": 1.2}}, "datasets.d.split.test"),
        ({"source": "stdlib", "kind": "code", "max_files": -1}, "datasets.d.max_files"),
        ({"source": "local", "path": "x", "max_rows": "ten"}, "datasets.d.max_rows"),
    ],
)
def test_validate_spec_names_the_key(spec, key):
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', chr(92) + '.')}\b"):
        validate_spec("d", spec)


def test_config_entries_validate(repo):
    import yaml

    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    for name, spec in config["datasets"].items():
        validate_spec(name, spec)


def test_read_split_errors(tmp_path):
    with pytest.raises(DataError, match="prepared split not found"):
        read_split(tmp_path / "nothing", "train")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        read_split(tmp_path, "dev")

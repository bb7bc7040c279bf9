"""The hf source through datasets.load_dataset on local files (never the hub)."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.data import prepare_dataset, read_documents, read_split
from datalign.data.hub import parquet_export_url

TEMPLATE = "informal: {nl_statement}\nformal: {formal_statement}"


def _proofnet_rows(split: str, n: int) -> list[dict]:
    return [
        {
            "id": f"Book|exercise_{split}_{i}",
            "nl_statement": f"Prove that {i} + 0 = {i} ({split}).",
            "nl_proof": "\\begin{proof} trivial \\end{proof}",
            "formal_statement": f"theorem ex_{split}_{i} : {i} + 0 = {i} :=",
            "src_header": "import data.nat.basic",
        }
        for i in range(n)
    ]


@pytest.fixture
def proofnet(tmp_path):
    files = {}
    for split, n in (("validation", 12), ("test", 9)):
        files[split] = str(tmp_path / f"{split}.parquet")
        pq.write_table(pa.Table.from_pylist(_proofnet_rows(split, n)), files[split])
    return files


def test_proofnet_shaped_hub_splits(tmp_path, proofnet, caplog):
    spec = {
        "source": "hf",
        "path": "parquet",
        "data_files": proofnet,
        "splits": {"validation": "validation", "test": "test"},
        "template": TEMPLATE,
        "cache_dir": str(tmp_path / "cache"),
    }
    caplog.set_level("INFO", logger="datalign.data.hub")
    manifest = prepare_dataset("proofnet", spec, tmp_path / "pn", 5)
    for split, n in (("validation", 12), ("test", 9)):
        expected = sorted(TEMPLATE.format(**r) for r in _proofnet_rows(split, n))
        assert sorted(read_split(tmp_path / "pn", split)) == expected
        assert manifest["splits"][split]["rows"] == n
        loaded = manifest["details"]["loaded"][split]
        assert loaded["columns"] == [
            "id",
            "nl_statement",
            "nl_proof",
            "formal_statement",
            "src_header",
        ]
        assert loaded["parquet_export"] is False
    assert manifest["splits"]["train"] == {
        **manifest["splits"]["train"],
        "rows": 0,
        "provided": False,
    }
    with pytest.raises(DataError, match="no train documents"):
        read_split(tmp_path / "pn", "train")
    assert "nl_statement" in caplog.text  # the columns found are logged


def test_single_split_cut_by_hashing(tmp_path, proofnet):
    spec = {
        "source": "hf",
        "path": "parquet",
        "data_files": {"train": proofnet["validation"]},
        "split": "train",
        "fractions": {"validation": 0.25, "test": 0.25},
        "template": "{nl_statement}",
        "cache_dir": str(tmp_path / "cache"),
    }
    prepare_dataset("one", spec, tmp_path / "one", 5)
    docs = [d for s in ("train", "validation", "test") for d in read_documents(tmp_path / "one", s)]
    assert sorted(d.group for d in docs) == sorted(f"train:{i}" for i in range(12))


def test_streaming_limit_reads_first_rows(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text("".join(json.dumps({"text": f"row {i}", "k": i}) + "\n" for i in range(500)))
    spec = {
        "source": "hf",
        "path": "json",
        "data_files": {"train": str(path)},
        "split": "train",
        "streaming": True,
        "limit": 40,
        "cache_dir": str(tmp_path / "cache"),
        "fractions": {"validation": 0.2, "test": 0.2},
    }
    manifest = prepare_dataset("stream", spec, tmp_path / "s", 5)
    got = sorted(t for s in ("train", "validation", "test") for t in read_split(tmp_path / "s", s))
    assert got == sorted(f"row {i}" for i in range(40))
    assert manifest["details"]["loaded"]["train"]["rows"] == 40


def test_missing_column_lists_columns(tmp_path, proofnet):
    spec = {
        "source": "hf",
        "path": "parquet",
        "data_files": proofnet,
        "splits": {"test": "test"},
        "template": "{informal_stmt} {formal_statement}",
        "cache_dir": str(tmp_path / "cache"),
    }
    with pytest.raises(
        DataError, match=r"\['informal_stmt'\] but the data has columns \['id', 'nl_statement'"
    ):
        prepare_dataset("pn", spec, tmp_path / "pn", 5)
    assert not (tmp_path / "pn").exists()


def test_parquet_export_fallback(tmp_path, monkeypatch):
    calls = []
    real = datasets.Dataset.from_list(_proofnet_rows("test", 6))

    def fake_load_dataset(path, *args, **kwargs):
        calls.append((path, kwargs))
        if len(calls) == 1:
            raise RuntimeError("Dataset scripts are no longer supported, but found proofnet.py")
        return real

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    spec = {
        "source": "hf",
        "path": "hoskinson-center/proofnet",
        "name": "plain_text",
        "revision": "main",
        "splits": {"test": "test"},
        "template": TEMPLATE,
    }
    prepare_dataset("pn", spec, tmp_path / "pn", 5)
    assert len(calls) == 2
    assert calls[0] == (
        "hoskinson-center/proofnet",
        {"split": "test", "streaming": False, "name": "plain_text", "revision": "main"},
    )
    path, kwargs = calls[1]
    assert path == "parquet"
    assert kwargs == {
        "data_files": {
            "test": "hf://datasets/hoskinson-center/proofnet@refs%2Fconvert%2Fparquet/plain_text/test/*.parquet"
        },
        "split": "test",
        "streaming": False,
    }
    assert parquet_export_url("a/b", None, "train") == (
        "hf://datasets/a/b@refs%2Fconvert%2Fparquet/default/train/*.parquet"
    )
    assert sorted(read_split(tmp_path / "pn", "test")) == sorted(
        TEMPLATE.format(**r) for r in _proofnet_rows("test", 6)
    )


def test_other_load_errors_are_not_retried(tmp_path, monkeypatch):
    calls = []

    def failing(path, *args, **kwargs):
        calls.append(path)
        raise ConnectionError("Couldn't reach 'x/y' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", failing)
    spec = {"source": "hf", "path": "x/y", "split": "train"}
    with pytest.raises(
        DataError, match=r"dataset xy: load_dataset\('x/y', split='train'\) failed: ConnectionError"
    ):
        prepare_dataset("xy", spec, tmp_path / "xy", 5)
    assert calls == ["x/y"]


def test_hf_spec_errors(tmp_path):
    base = {"source": "hf", "path": "x/y"}
    with pytest.raises(ConfigError, match=r"datasets\.h\.split"):
        prepare_dataset("h", base, tmp_path / "h", 0)
    with pytest.raises(ConfigError, match=r"datasets\.h\.split: for source hf"):
        prepare_dataset("h", {**base, "split": {"validation": 0.1}}, tmp_path / "h", 0)
    with pytest.raises(ConfigError, match=r"datasets\.h\.splits: unknown split"):
        prepare_dataset("h", {**base, "splits": {"dev": "validation"}}, tmp_path / "h", 0)
    with pytest.raises(ConfigError, match=r"datasets\.h\.limit"):
        prepare_dataset("h", {**base, "split": "train", "limit": 0}, tmp_path / "h", 0)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("streaming", [False, True])
def test_load_error_names_the_cause_the_file_and_the_line(tmp_path, streaming):
    # An optional column null throughout one file and a struct in another: datasets
    # wraps "Couldn't cast ... to null" in "An error occurred while generating the dataset".
    a = _jsonl(tmp_path / "a.json", [{"text": f"a{i}", "meta": None} for i in range(5)])
    b_rows = [{"text": f"b{i}", "meta": None if i < 2 else {"x": i, "y": "s"}} for i in range(5)]
    b = _jsonl(tmp_path / "b.json", b_rows)
    spec = {
        "source": "hf",
        "path": "json",
        "data_files": {"train": [a, b]},
        "split": "train",
        "streaming": streaming,
        "cache_dir": str(tmp_path / "cache"),
    }
    with pytest.raises(DataError) as info:
        prepare_dataset("mixed", spec, tmp_path / "out", 5)
    message = str(info.value)
    assert "\n" not in message
    assert "An error occurred while generating the dataset" not in message
    assert message.startswith("dataset mixed: load_dataset('json', split='train') failed: ")
    assert f"{b}, line 3 (column 'meta' holds an object, not null): " in message
    assert "TypeError: Couldn't cast array of type struct<x: int64, y: string> to null" in message


def test_load_error_names_the_file_of_other_failures(tmp_path):
    a = _jsonl(tmp_path / "a.json", [{"text": f"a{i}"} for i in range(5)])
    extra = _jsonl(tmp_path / "extra.json", [{"text": f"c{i}", "x": i} for i in range(5)])
    spec = {
        "source": "hf",
        "path": "json",
        "data_files": {"train": [a, extra]},
        "split": "train",
        "cache_dir": str(tmp_path / "cache"),
    }
    with pytest.raises(DataError, match=rf"failed: {extra}: \w*CastError: .*column names don't match"):
        prepare_dataset("cols", spec, tmp_path / "out", 5)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"text": "fine"}) + "\n" + '{"text": "cut\n')
    spec = {**spec, "data_files": {"train": [a, str(broken)]}, "cache_dir": str(tmp_path / "c2")}
    with pytest.raises(DataError) as info:
        prepare_dataset("bad", spec, tmp_path / "out", 5)
    assert "\n" not in str(info.value)
    assert f"failed: {broken}, line 2 column " in str(info.value)
    assert "(invalid JSON: " in str(info.value)


def test_describe_load_error_unwraps_chains():
    from datalign.data.hub import describe_load_error

    try:
        try:
            raise KeyError("the real cause")
        except KeyError as inner:
            raise RuntimeError("An error occurred while generating the dataset") from inner
    except RuntimeError as outer:
        assert describe_load_error(outer) == "KeyError: 'the real cause'"
    try:
        try:
            raise ValueError("noise while handling")
        except ValueError:
            raise OSError("disk\nfull") from None
    except OSError as exc:
        assert describe_load_error(exc) == "OSError: disk full"

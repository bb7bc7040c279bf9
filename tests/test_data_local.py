"""The local source: JSON Lines, JSON, Parquet, CSV and text files, directories and globs."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.data import prepare_dataset, read_documents
from datalign.data.local import read_rows

SPLITS = ("train", "validation", "test")
FRACTIONS = {"validation": 0.2, "test": 0.2}
ROWS = [{"q": f"question {i}", "a": f"answer {i * i}", "topic": f"t{i % 12}"} for i in range(80)]


def _docs(out):
    return sorted((d.text, d.group) for s in SPLITS for d in read_documents(out, s))


def test_jsonl_text_field_row_groups(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": f"line {i}", "n": i} for i in range(50)] + [{"text": "   "}, {"text": None}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepare_dataset(
        "j", {"source": "local", "path": str(path), "split": FRACTIONS}, tmp_path / "j", 1
    )
    assert _docs(tmp_path / "j") == sorted((f"line {i}", f"rows.jsonl:{i}") for i in range(50))


def test_parquet_template_and_group_field(tmp_path):
    path = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    spec = {
        "source": "local",
        "path": str(path),
        "template": "Q: {q}\nA: {a}",
        "group_field": "topic",
        "split": FRACTIONS,
    }
    prepare_dataset("p", spec, tmp_path / "p", 1)
    assert _docs(tmp_path / "p") == sorted((f"Q: {r['q']}\nA: {r['a']}", r["topic"]) for r in ROWS)
    groups = {s: {d.group for d in read_documents(tmp_path / "p", s)} for s in SPLITS}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]


def test_csv_and_json_in_a_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "a.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["q", "a", "topic"])
        writer.writeheader()
        writer.writerows(ROWS[:40])
    (data / "b.json").write_text(json.dumps(ROWS[40:]))
    (data / "notes.bin").write_bytes(b"\x00\x01")  # not a data format: ignored in a directory
    spec = {"source": "local", "path": str(data), "template": "{q} -> {a}", "split": FRACTIONS}
    prepare_dataset("d", spec, tmp_path / "d", 1)
    expected = [(f"{r['q']} -> {r['a']}", f"a.csv:{i}") for i, r in enumerate(ROWS[:40])]
    expected += [(f"{r['q']} -> {r['a']}", f"b.json:{i}") for i, r in enumerate(ROWS[40:])]
    assert _docs(tmp_path / "d") == sorted(expected)


def test_txt_glob_one_document_per_file(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / "txt" / sub).mkdir(parents=True)
        for i in range(20):
            (tmp_path / "txt" / sub / f"{i}.txt").write_text(f"{sub} text {i}\nsecond line")
    (tmp_path / "txt" / "x" / "blank.txt").write_text("\n\n")
    spec = {"source": "local", "path": str(tmp_path / "txt" / "*" / "*.txt"), "split": FRACTIONS}
    prepare_dataset("t", spec, tmp_path / "t", 1)
    expected = sorted(
        (f"{s} text {i}\nsecond line", f"{s}/{i}.txt") for s in ("x", "y") for i in range(20)
    )
    assert _docs(tmp_path / "t") == expected


def test_missing_column_lists_columns(tmp_path):
    path = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    spec = {"source": "local", "path": str(path), "template": "{question} {a}"}
    with pytest.raises(
        DataError,
        match=r"column\(s\) \['question'\] but the data has columns \['q', 'a', 'topic'\]",
    ):
        prepare_dataset("m", spec, tmp_path / "m", 1)


def test_local_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset(
            "n", {"source": "local", "path": str(tmp_path / "nope.jsonl")}, tmp_path / "n", 1
        )
    with pytest.raises(ConfigError, match=r"datasets\.n\.path: required"):
        prepare_dataset("n", {"source": "local"}, tmp_path / "n", 1)
    with pytest.raises(ConfigError, match=r"datasets\.n\.template"):
        prepare_dataset("n", {"source": "local", "path": "x", "template": "{}"}, tmp_path / "n", 1)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_jsonl_is_split_on_newline_only(tmp_path, separator):
    # JSON strings may hold these unescaped; str.splitlines() would cut the line at them.
    path = tmp_path / "rows.jsonl"
    texts = [f"row {i}{separator}continued" for i in range(30)]
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))
    assert separator in path.read_text()
    spec = {"source": "local", "path": str(path), "split": FRACTIONS}
    prepare_dataset("u", spec, tmp_path / "u", 1)
    assert sorted(t for t, _ in _docs(tmp_path / "u")) == sorted(texts)
    # the same rows in a ".json" file (JSON Lines there too) and with Windows line ends
    crlf = tmp_path / "rows.json"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    prepare_dataset("c", {**spec, "path": str(crlf)}, tmp_path / "c", 1)
    assert sorted(t for t, _ in _docs(tmp_path / "c")) == sorted(texts)


def test_json_errors_name_the_line_in_the_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps({"text": f"a\u2028b {i}"}, ensure_ascii=False) for i in range(3)]
    path.write_text("\n".join([*lines, '{"text": "unterminated}', *lines]) + "\n")
    spec = {"source": "local", "path": str(path)}
    with pytest.raises(
        DataError,
        match=rf"dataset e: {path}, line 4 column 10: invalid JSON \(Unterminated string",
    ):
        prepare_dataset("e", spec, tmp_path / "e", 1)
    path.write_text("\n".join([*lines, "", '["not", "an object"]']) + "\n")
    with pytest.raises(DataError, match=rf"{path}, line 5: a JSON list, expected an object"):
        prepare_dataset("e", spec, tmp_path / "e", 1)
    array = tmp_path / "rows.json"
    array.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]\n')
    with pytest.raises(DataError, match=rf"{array}, line 3 column 16: invalid JSON"):
        prepare_dataset("e", {"source": "local", "path": str(array)}, tmp_path / "e", 1)
    array.write_text('[{"text": "a"}, "b"]')
    with pytest.raises(DataError, match=rf"{array}, element 1: a JSON str, expected an object"):
        prepare_dataset("e", {"source": "local", "path": str(array)}, tmp_path / "e", 1)
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"text": "just one row, on one line"}) + "\n")
    rows, locate = read_rows(one, "json", "o")
    assert rows == [{"text": "just one row, on one line"}] and locate(0) == "line 1"
    one.write_text(json.dumps({"text": "an object"}, indent=2))
    with pytest.raises(DataError, match=r"one\.json: holds one JSON dict, not a list of objects"):
        read_rows(one, "json", "o")

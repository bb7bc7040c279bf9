"""Values that are not text never become their Python printout ("None", "{'a': 1}", "True"):
they are an error naming the dataset, file, line/row and field, or with ``on_invalid: skip``
skipped and counted in the manifest and the log. Numbers in templates are formatted."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.data import prepare_dataset, read_documents, validate_spec
from datalign.data.records import RowReport, Template, render_rows

SPLITS = ("train", "validation", "test")
FRACTIONS = {"validation": 0.2, "test": 0.2}
QA_TEMPLATE = "Q: {question}\nA: {answer}"


def _texts(out):
    return sorted(d.text for s in SPLITS for d in read_documents(out, s))


def _qa_file(tmp_path, bad_answer, n=40, at=5, name="qa.jsonl"):
    rows = [{"question": f"What is {i}+{i}?", "answer": f"{2 * i}"} for i in range(n)]
    rows[at] = {"question": "What is 2+2?", "answer": bad_answer}
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


BAD_VALUES = [
    (None, "null"),
    (True, r"true \(a boolean\)"),
    (False, r"false \(a boolean\)"),
    ({"value": 4}, "an object"),
    ([4], "a list"),
]


@pytest.mark.parametrize("value, shown", BAD_VALUES)
def test_local_template_field_not_text_is_an_error(tmp_path, value, shown):
    path, _ = _qa_file(tmp_path, value)
    spec = {"source": "local", "path": str(path), "template": QA_TEMPLATE, "split": FRACTIONS}
    with pytest.raises(DataError) as info:
        prepare_dataset("qa", spec, tmp_path / "out", 1)
    message = str(info.value)
    assert "\n" not in message
    assert f"dataset qa: file {path}, line 6: field 'answer' is " in message
    assert re.search(f"field 'answer' is {shown}, expected a string or a number", message)
    assert "on_invalid: skip" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, shown", BAD_VALUES)
def test_local_template_on_invalid_skip_counts(tmp_path, caplog, value, shown):
    path, rows = _qa_file(tmp_path, value)
    spec = {
        "source": "local",
        "path": str(path),
        "template": QA_TEMPLATE,
        "on_invalid": "skip",
        "split": FRACTIONS,
    }
    caplog.set_level("INFO")
    manifest = prepare_dataset("qa", spec, tmp_path / "out", 1)
    expected = sorted(QA_TEMPLATE.format(**r) for i, r in enumerate(rows) if i != 5)
    assert _texts(tmp_path / "out") == expected
    assert not any("None" in t or "True" in t or "{" in t for t in expected)
    details = manifest["details"]
    assert details["invalid_rows"] == 1 and details["invalid_by_field"] == {"answer": 1}
    assert details["invalid_examples"][0].startswith(f"file {path}, line 6: field 'answer' is ")
    assert (details["rows"], details["documents"]) == (40, 39)
    assert "skipped 1 row(s)" in caplog.text and "field 'answer'" in caplog.text


def test_numbers_in_templates_are_formatted(tmp_path):
    rows = [{"q": f"q{i}", "n": i, "x": i / 4, "d": Decimal("1.50")} for i in range(30)]
    path = tmp_path / "nums.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    spec = {"source": "local", "path": str(path), "template": "{q}: {n} {x} {x:.1f}", "split": FRACTIONS}
    prepare_dataset("n", spec, tmp_path / "out", 1)
    assert _texts(tmp_path / "out") == sorted(f"q{i}: {i} {i / 4} {i / 4:.1f}" for i in range(30))
    report = RowReport()
    rendered = render_rows([rows[3]], "n", "{d}|{n:03d}", None, None, iter(["g"]), "t", report=report)
    assert [d.text for d in rendered] == ["1.50|003"]


def test_nested_fields_are_checked_too():
    rows = [{"meta": {"title": "A", "tags": ["x", None]}}]
    docs = render_rows(rows, "n", "{meta[title]}: {meta[tags][0]}", None, None, iter(["g"]), "t")
    assert docs[0].text == "A: x"
    with pytest.raises(DataError, match=r"row 0: field 'meta\[tags\]\[1\]' is null"):
        render_rows(rows, "n", "{meta[tags][1]}", None, None, iter(["g"]), "t")
    with pytest.raises(DataError, match=r"row 0: field 'meta' is null"):
        render_rows([{"meta": None}], "n", "{meta[title]}", None, None, iter(["g"]), "t")
    with pytest.raises(DataError, match=r"field 'meta\[nope\]' cannot be looked up"):
        render_rows(rows, "n", "{meta[nope]}", None, None, iter(["g"]), "t")
    with pytest.raises(DataError, match=r"row 0: cannot be formatted by the template"):
        render_rows([{"a": "text"}], "n", "{a:.2f}", None, None, iter(["g"]), "t")
    assert Template("{a} {b!r:>5}", "t").render({"a": 1, "b": "z"}) == "1   'z'"


@pytest.mark.parametrize("value, shown", [*BAD_VALUES[1:], (7, "a int"), (2.5, "a float")])
def test_local_text_field_not_a_string(tmp_path, value, shown):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": f"line {i}"} for i in range(30)] + [{"text": value}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"source": "local", "path": str(path), "split": FRACTIONS}
    with pytest.raises(DataError, match=rf"file {path}, line 31: field 'text' is {shown}, expected a string;"):
        prepare_dataset("t", spec, tmp_path / "out", 1)
    manifest = prepare_dataset("t", {**spec, "on_invalid": "skip"}, tmp_path / "out", 1)
    assert _texts(tmp_path / "out") == sorted(f"line {i}" for i in range(30))
    assert manifest["details"]["invalid_by_field"] == {"text": 1}


def test_null_and_blank_texts_are_dropped_and_counted(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": f"line {i}"} for i in range(30)] + [{"text": None}] * 3 + [{"text": "  "}] * 2
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    caplog.set_level("INFO")
    manifest = prepare_dataset(
        "t", {"source": "local", "path": str(path), "split": FRACTIONS}, tmp_path / "out", 1
    )
    details = manifest["details"]
    assert (details["null_texts"], details["blank_texts"], details["invalid_rows"]) == (3, 2, 0)
    assert (details["rows"], details["documents"]) == (35, 30)
    assert "dropped 3 row(s)" in caplog.text and "2 with a blank one" in caplog.text


def test_group_field_must_be_a_string_or_number(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": f"t{i}", "g": i % 7} for i in range(30)] + [{"text": "x", "g": None}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"source": "local", "path": str(path), "group_field": "g", "split": FRACTIONS}
    with pytest.raises(DataError, match=r"line 31: field 'g' is null, expected a string or a number"):
        prepare_dataset("g", spec, tmp_path / "out", 1)
    manifest = prepare_dataset("g", {**spec, "on_invalid": "skip"}, tmp_path / "out", 1)
    groups = {d.group for s in SPLITS for d in read_documents(tmp_path / "out", s)}
    assert groups == {str(i) for i in range(7)}
    assert manifest["details"]["invalid_by_field"] == {"g": 1}


def test_csv_short_row_is_null_not_none(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(30)) + "lonely\n")
    spec = {"source": "local", "path": str(path), "template": QA_TEMPLATE}
    with pytest.raises(DataError, match=r"qa\.csv, line 32: field 'answer' is null"):
        prepare_dataset("c", spec, tmp_path / "out", 1)


def test_on_invalid_is_validated():
    with pytest.raises(ConfigError, match=r"datasets\.d\.on_invalid: expected one of \['error', 'skip'\]"):
        validate_spec("d", {"source": "local", "path": "x", "on_invalid": "drop"})
    with pytest.raises(ConfigError, match=r"datasets\.d\.on_invalid: unknown key for source stdlib"):
        validate_spec("d", {"source": "stdlib", "kind": "code", "on_invalid": "skip"})
    for source in ({"source": "local", "path": "x"}, {"source": "hf", "path": "x", "split": "t"}):
        validate_spec("d", {**source, "on_invalid": "skip"})


# ---------------------------------------------------------------- the hf source shares the rules


def _hf_spec(tmp_path, path, **extra):
    return {
        "source": "hf",
        "path": "json",
        "data_files": {"train": str(path)},
        "split": "train",
        "fractions": FRACTIONS,
        "cache_dir": str(tmp_path / "cache"),
        **extra,
    }


def test_hf_template_null_is_an_error_or_skipped(tmp_path):
    path, rows = _qa_file(tmp_path, None, name="qa.json")
    spec = _hf_spec(tmp_path, path, template=QA_TEMPLATE)
    with pytest.raises(DataError) as info:
        prepare_dataset("qa", spec, tmp_path / "out", 1)
    assert "\n" not in str(info.value)
    assert f"json split 'train' (file {path}), row 5: field 'answer' is null" in str(info.value)
    manifest = prepare_dataset("qa", {**spec, "on_invalid": "skip"}, tmp_path / "out", 1)
    assert _texts(tmp_path / "out") == sorted(QA_TEMPLATE.format(**r) for i, r in enumerate(rows) if i != 5)
    loaded = manifest["details"]["loaded"]["train"]
    assert (loaded["rows"], loaded["documents"], loaded["invalid_rows"]) == (40, 39, 1)
    assert loaded["invalid_by_field"] == {"answer": 1}


def test_hf_text_field_object_and_null(tmp_path):
    path = tmp_path / "rows.json"
    rows = [{"text": f"row {i}"} for i in range(30)] + [{"text": None}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = prepare_dataset("t", _hf_spec(tmp_path, path), tmp_path / "out", 1)
    assert manifest["details"]["loaded"]["train"]["null_texts"] == 1
    path.write_text("".join(json.dumps({"text": {"a": i}}) + "\n" for i in range(3)))
    spec = _hf_spec(tmp_path, path, cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(DataError, match=r"row 0: field 'text' is an object, expected a string"):
        prepare_dataset("t", spec, tmp_path / "out2", 1)


def test_hf_join_items_are_checked(tmp_path):
    path = tmp_path / "rows.json"
    rows = [{"steps": [{"s": f"a{i}"}, {"s": f"b{i}"}]} for i in range(30)]
    rows[4] = {"steps": [{"s": "ok"}, {"s": None}]}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = _hf_spec(
        tmp_path, path, join={"joined": {"column": "steps", "item": "<{s}>"}}, template="{joined}"
    )
    with pytest.raises(DataError, match=r"row 4: field 'steps\[1\]\.s' is null"):
        prepare_dataset("j", spec, tmp_path / "out", 1)
    manifest = prepare_dataset("j", {**spec, "on_invalid": "skip"}, tmp_path / "out", 1)
    assert len(_texts(tmp_path / "out")) == 29 and "<a0>\n<b0>" in _texts(tmp_path / "out")
    assert manifest["details"]["loaded"]["train"]["invalid_by_field"] == {"steps[1].s": 1}


def test_package_attribute_values_skip(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "valpkg_5521").mkdir(parents=True)
    (site / "valpkg_5521" / "__init__.py").write_text("")
    (site / "valpkg_5521" / "data.py").write_text(
        "ITEMS = [f'item {i}' for i in range(40)] + [None, 3, {'a': 1}]\n"
    )
    monkeypatch.syspath_prepend(str(site))
    spec = {"source": "package", "package": "valpkg_5521", "module": "valpkg_5521.data", "attribute": "ITEMS"}
    with pytest.raises(DataError, match=r"valpkg_5521\.data\.ITEMS\['40'\] is a NoneType, expected str \(null\)"):
        prepare_dataset("v", spec, tmp_path / "out", 0)
    manifest = prepare_dataset("v", {**spec, "on_invalid": "skip"}, tmp_path / "out", 0)
    assert len(_texts(tmp_path / "out")) == 40
    assert manifest["details"]["invalid_values"] == 3

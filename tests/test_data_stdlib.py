"""The stdlib source: code files and docstring -> code pairs, split by module."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

from datalign.core.errors import DataError
from datalign.data import prepare_dataset, read_documents, read_split
from datalign.data.stdlib import function_pairs, module_group, stdlib_files, stdlib_root

SEED = 7
TEMPLATE = "informal: {nl}\nformal: {formal}"


def _pairs_spec(**extra):
    return {
        "source": "stdlib",
        "kind": "docstring_pairs",
        "template": TEMPLATE,
        "split": {"validation": 0.2, "test": 0.3},
        "max_files": 80,
        **extra,
    }


def _groups(out: Path) -> dict[str, set[str]]:
    return {s: {d.group for d in read_documents(out, s)} for s in ("train", "validation", "test")}


def test_function_pairs_exact():
    source = textwrap.dedent('''
        import functools

        def plain(x):
            """Add one.

            Detail.
                More.
            """

            return x + 1

        class Box:
            @functools.cache
            def method(self, y):
                """Multiply."""
                text = """
        column zero
        """
                return y * 2

            async def coro(self):
                """Wait."""
                await thing()

        def only_doc():
            """Nothing else."""

        def inline(): "Same line."; return 1

        def outer():
            """Outer."""
            def inner():
                """Inner."""
                return 3
            return inner
        ''')
    got = {q: (nl, code) for q, nl, code in function_pairs(source)}
    assert set(got) == {"plain", "Box.method", "Box.coro", "outer", "outer.inner"}
    assert got["plain"] == ("Add one.\n\nDetail.\n    More.", "def plain(x):\n    return x + 1")
    assert got["Box.method"] == (
        "Multiply.",
        '@functools.cache\ndef method(self, y):\n    text = """\ncolumn zero\n"""\n    return y * 2',
    )
    assert got["Box.coro"] == ("Wait.", "async def coro(self):\n    await thing()")
    assert got["outer.inner"] == ("Inner.", "def inner():\n    return 3")
    assert (
        got["outer"][1]
        == 'def outer():\n    def inner():\n        """Inner."""\n        return 3\n    return inner'
    )


def test_stdlib_files_skip_test_suites():
    files = stdlib_files(stdlib_root())
    assert len(files) > 300
    assert files == sorted(files, key=str)
    excluded = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
    assert not any(excluded & set(f.parts[:-1]) for f in files)
    assert not any(f.parts[0] == "pydoc_data" for f in files)
    assert module_group(Path("json/decoder.py")) == "json"
    assert module_group(Path("os.py")) == "os"


def test_docstring_pairs_split_by_module_and_templated(tmp_path):
    out = tmp_path / "pairs"
    manifest = prepare_dataset("pairs", _pairs_spec(), out, SEED)
    groups = _groups(out)
    assert not groups["train"] & groups["test"]
    assert not groups["train"] & groups["validation"]
    assert not groups["validation"] & groups["test"]
    root = stdlib_root()
    first80 = {module_group(f) for f in stdlib_files(root)[:80]}
    assert set().union(*groups.values()) <= first80
    total = 0
    for split in ("train", "validation", "test"):
        texts = read_split(out, split)
        assert len(texts) == manifest["splits"][split]["rows"] > 0
        total += len(texts)
        for text in texts:
            assert text.startswith("informal: ")
            nl, formal = text[len("informal: ") :].split("\nformal: ", 1)
            # the formal side is a complete, parseable definition without its docstring
            tree = ast.parse(formal)
            fn = tree.body[0]
            assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            assert ast.get_docstring(fn) is None
            assert 8 <= len(nl) <= 2000 and 16 <= len(formal) <= 4000
    assert manifest["details"]["files_read"] == 80


def test_docstring_matches_inspect():
    # independent reference: the docstring the interpreter itself attaches to the function
    import textwrap as module

    pairs = {q: nl for q, nl, _ in function_pairs(Path(module.__file__).read_text())}
    assert pairs["dedent"] == inspect.cleandoc(module.dedent.__doc__)
    assert pairs["TextWrapper.wrap"] == inspect.cleandoc(module.TextWrapper.wrap.__doc__)


def test_deterministic_and_seed_dependent(tmp_path):
    spec = _pairs_spec(max_files=40)
    a = prepare_dataset("pairs", spec, tmp_path / "a", SEED)
    b = prepare_dataset("pairs", spec, tmp_path / "b", SEED)
    c = prepare_dataset("pairs", spec, tmp_path / "c", SEED + 1)
    hashes = [{s: m["splits"][s]["sha256"] for s in m["splits"]} for m in (a, b, c)]
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]
    assert _groups(tmp_path / "a") != _groups(tmp_path / "c")
    for split in ("train", "validation", "test"):
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{split}.jsonl"
        ).read_bytes()


def test_code_documents_are_whole_files(tmp_path):
    out = tmp_path / "code"
    spec = {
        "source": "stdlib",
        "kind": "code",
        "split": {"validation": 0.2, "test": 0.3},
        "max_files": 30,
    }
    manifest = prepare_dataset("code", spec, out, SEED)
    root = stdlib_root()
    files = stdlib_files(root)[:30]
    expected = sorted(
        (p.read_text(encoding="utf-8"), module_group(f))
        for f in files
        if (p := root / f).read_text().strip()
    )
    got = sorted(
        (d.text, d.group) for s in ("train", "validation", "test") for d in read_documents(out, s)
    )
    assert got == expected
    groups = _groups(out)
    assert not groups["train"] & groups["test"]
    assert sum(m["rows"] for m in manifest["splits"].values()) == len(expected)


def test_max_rows_and_empty_split(tmp_path):
    spec = {
        "source": "stdlib",
        "kind": "code",
        "max_files": 80,
        "max_rows": 40,
        "split": {"validation": 0.2, "test": 0.3},
    }
    m = prepare_dataset("code", spec, tmp_path / "r", SEED)
    assert sum(s["rows"] for s in m["splits"].values()) == 40
    with pytest.raises(DataError, match=r"dataset tiny: split '(train|validation|test)' is empty"):
        prepare_dataset("tiny", _pairs_spec(max_files=1), tmp_path / "tiny", SEED)
    assert not (tmp_path / "tiny").exists()

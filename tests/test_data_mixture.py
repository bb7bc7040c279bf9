"""Mixtures by character share, built from prepared component directories."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from datalign.core.errors import ConfigError, DataError
from datalign.data import mixture_components, prepare_dataset, read_documents

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    """Two prepared datasets, documents of 20-400 characters, told apart by their letter."""
    root = tmp_path_factory.mktemp("mix")
    rng = np.random.default_rng(0)
    dirs = {}
    for comp, letter, n in (("alpha", "a", 600), ("beta", "b", 900)):
        path = root / f"{comp}.jsonl"
        lengths = rng.integers(20, 400, size=n)
        path.write_text("".join(json.dumps({"text": letter * int(k)}) + "\n" for k in lengths))
        spec = {"source": "local", "path": str(path), "split": {"validation": 0.15, "test": 0.15}}
        prepare_dataset(comp, spec, root / comp, 11)
        dirs[comp] = root / comp
    return root, dirs


def _achieved(out, split):
    docs = read_documents(out, split)
    chars = Counter()
    for d in docs:
        comp = d.group.split("/", 1)[0]
        assert d.text[0] == {"alpha": "a", "beta": "b"}[comp]
        chars[comp] += len(d.text)
    total = sum(chars.values())
    return {c: v / total for c, v in chars.items()}, total, docs


def test_shares_close_and_monotone(components):
    root, dirs = components
    previous = {s: -1.0 for s in SPLITS}
    for share in (0.1, 0.25, 0.5, 0.75, 0.9):
        spec = {"source": "mixture", "components": {"alpha": share, "beta": 1 - share}}
        out = root / f"mix{share}"
        manifest = prepare_dataset(f"mix{share}", spec, out, 11, dirs)
        for split in SPLITS:
            achieved, total, docs = _achieved(out, split)
            comp_docs = {c: read_documents(dirs[c], split) for c in dirs}
            comp_chars = {c: sum(len(d.text) for d in v) for c, v in comp_docs.items()}
            expected_total = min(comp_chars["alpha"] / share, comp_chars["beta"] / (1 - share))
            # each component's prefix is within half a document (<= 200 chars) of its target
            assert abs(total - expected_total) <= 2 * 200
            assert abs(achieved["alpha"] - share) <= 400 / total
            assert achieved["alpha"] > previous[split]
            previous[split] = achieved["alpha"]
            stats = manifest["details"]["splits"][split]["components"]
            assert stats["alpha"]["achieved_share"] == pytest.approx(achieved["alpha"])
            assert stats["alpha"]["characters"] + stats["beta"]["characters"] == total
            # sampled without replacement from the component's own split
            for comp in dirs:
                mine = Counter((d.text, d.group) for d in comp_docs[comp])
                taken = Counter(
                    (d.text, d.group.split("/", 1)[1]) for d in docs if d.group.startswith(comp)
                )
                assert not taken - mine
            assert manifest["splits"][split]["rows"] == len(docs)
        assert manifest["details"]["unit"] == "characters"


def test_full_share_is_the_component(components):
    root, dirs = components
    spec = {"source": "mixture", "components": {"alpha": 1.0, "beta": 0.0}}
    assert mixture_components(spec) == ["alpha"]
    prepare_dataset("only_alpha", spec, root / "only", 11, {"alpha": dirs["alpha"]})
    for split in SPLITS:
        got = sorted((d.text, d.group) for d in read_documents(root / "only", split))
        want = sorted((d.text, f"alpha/{d.group}") for d in read_documents(dirs["alpha"], split))
        assert got == want


def test_deterministic_given_seed(components):
    root, dirs = components
    spec = {"source": "mixture", "components": {"alpha": 0.4, "beta": 0.6}}
    a = prepare_dataset("m", spec, root / "d1", 3, dirs)
    b = prepare_dataset("m", spec, root / "d2", 3, dirs)
    c = prepare_dataset("m", spec, root / "d3", 4, dirs)
    sha = [{s: m["splits"][s]["sha256"] for s in SPLITS} for m in (a, b, c)]
    assert sha[0] == sha[1] != sha[2]


def test_mixture_errors(components, tmp_path):
    _, dirs = components
    with pytest.raises(ConfigError, match=r"datasets\.m\.components: shares sum to 0\.9"):
        prepare_dataset(
            "m",
            {"source": "mixture", "components": {"alpha": 0.5, "beta": 0.4}},
            tmp_path / "m",
            0,
            dirs,
        )
    with pytest.raises(ConfigError, match=r"datasets\.m\.components\.beta"):
        prepare_dataset(
            "m",
            {"source": "mixture", "components": {"alpha": 1.5, "beta": -0.5}},
            tmp_path / "m",
            0,
            dirs,
        )
    with pytest.raises(ConfigError, match=r"datasets\.m\.components"):
        prepare_dataset("m", {"source": "mixture", "components": {}}, tmp_path / "m", 0, dirs)
    with pytest.raises(DataError, match=r"component\(s\) \['beta'\] not prepared"):
        prepare_dataset(
            "m",
            {"source": "mixture", "components": {"alpha": 0.5, "beta": 0.5}},
            tmp_path / "m",
            0,
            {"alpha": dirs["alpha"]},
        )
    assert mixture_components({"source": "local", "path": "x"}) == []

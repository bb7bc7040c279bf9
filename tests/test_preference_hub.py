"""The hf preference source through datasets.load_dataset on local files shaped like the hub's (never the hub).

Each fixture writes the columns and types listed in shared/HUB.md in the file
format the hub serves (parquet, JSON Lines, gzipped JSON Lines); the expected
prompts and completions are written out by hand in the HH text format, not
through the code under test.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trl.data_utils import extract_prompt

from datalign.core.errors import DataError
from datalign.data.preference import (
    KNOWN_HUB,
    PreferencePair,
    prepare_preference_dataset,
    read_preference_split,
    validate_preference_spec,
    with_hub_defaults,
)
from datalign.data.preference.hub import load_hub_split
from datalign.data.preference.oasst import oasst_pairs
from datalign.data.preference.rows import DropLog

SPLITS = ("train", "test")


def _parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def _all(out, form="pairs"):
    return {s: read_preference_split(out, s, form) for s in SPLITS}


def _msg(role, content):
    return {"content": content, "role": role}


# ---------------------------------------------------------------- trl-lib/kto-mix-14k


def _kto_mix_rows(split, n):
    rows = []
    for i in range(n):
        prompt = [_msg("user", f"{split} question {i}?")]
        if i % 4 == 0:
            prompt = [_msg("system", "You are terse."), *prompt]
        rows.append({"prompt": prompt, "completion": [_msg("assistant", f"answer {i}")], "label": i % 3 != 0})
    return rows


def test_kto_mix_shaped(tmp_path):
    files = {s: _parquet(tmp_path / f"{s}.parquet", _kto_mix_rows(s, n)) for s, n in (("train", 30), ("test", 12))}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "kto",
            "splits": {"train": "train", "test": "test"}, "cache_dir": str(tmp_path / "cache")}
    manifest = prepare_preference_dataset("kto_mix", spec, tmp_path / "out", 1)
    got = _all(tmp_path / "out", "kto")
    for split, n in (("train", 30), ("test", 12)):
        expected = []
        for i in range(n):
            head = "\n\nSystem: You are terse." if i % 4 == 0 else ""
            expected.append((f"{head}\n\nHuman: {split} question {i}?\n\nAssistant:", f" answer {i}", i % 3 != 0))
        assert Counter((r.prompt, r.completion, r.desirable) for r in got[split]) == Counter(expected)
        assert all(r.pair is None for r in got[split])
        assert manifest["details"]["loaded"][split]["columns"] == ["prompt", "completion", "label"]
    assert manifest["splits"]["train"]["desirable"] == 20 and manifest["splits"]["train"]["undesirable"] == 10


def test_kto_string_labels_fail_naming_split_row_field(tmp_path):
    rows = _kto_mix_rows("train", 6)
    for row in rows:
        row["label"] = "true" if row["label"] else "false"  # a string column, as a careless export has
    files = {"train": _parquet(tmp_path / "train.parquet", rows)}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "kto", "split": "train",
            "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(DataError) as info:
        prepare_preference_dataset("kto_mix", spec, tmp_path / "out", 1)
    assert str(info.value).startswith(
        "dataset kto_mix: parquet split 'train', row 1, field 'label': not a boolean (got str 'false')"
    )


# ---------------------------------------------------------------- HuggingFaceH4/ultrafeedback_binarized


def _uf_rows(split, n):
    rows = []
    for i in range(n):
        prompt = f"Explain {split} topic {i}."
        chosen = [_msg("user", prompt), _msg("assistant", f"A careful answer {i}.")]
        rejected = [_msg("user", prompt), _msg("assistant", f"Nonsense {i}.")]
        rows.append({"prompt": prompt, "prompt_id": f"{split}-{i:04d}", "chosen": chosen, "rejected": rejected,
                     "messages": chosen, "score_chosen": 8.0, "score_rejected": 3.5})
    return rows


def test_ultrafeedback_shaped_with_trl_prompt_reference(tmp_path):
    rows = {"train_prefs": _uf_rows("train", 25), "test_prefs": _uf_rows("test", 10)}
    rows["train_prefs"][3]["chosen"][1]["content"] = "  "  # an empty reply: a bad row
    files = {s: _parquet(tmp_path / f"{s}.parquet", r) for s, r in rows.items()}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "pairs",
            "splits": {"train": "train_prefs", "test": "test_prefs"}, "group_field": "prompt_id",
            "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(DataError, match=r"split 'train_prefs', row 4, field 'chosen\[1\]\.content': empty"):
        prepare_preference_dataset("uf", spec, tmp_path / "a", 1)
    manifest = prepare_preference_dataset("uf", {**spec, "on_bad_row": "skip"}, tmp_path / "b", 1)
    assert manifest["dropped"]["bad_rows"] == {"chosen[].content: empty": 1}
    got = _all(tmp_path / "b")
    for split, hub in (("train", "train_prefs"), ("test", "test_prefs")):
        good = [r for i, r in enumerate(rows[hub]) if not (hub == "train_prefs" and i == 3)]
        expected = []
        for r in good:
            trl = extract_prompt({"chosen": r["chosen"], "rejected": r["rejected"]})  # reference split
            assert trl["prompt"] == [_msg("user", r["prompt"])]
            expected.append(PreferencePair(f"\n\nHuman: {r['prompt']}\n\nAssistant:",
                                           " " + trl["chosen"][0]["content"],
                                           " " + trl["rejected"][0]["content"], r["prompt_id"]))
        assert sorted(got[split], key=str) == sorted(expected, key=str)


# ---------------------------------------------------------------- Anthropic HH (Golden and hh-rlhf)


def _hh_rows(split, n):
    rows = []
    for i in range(n):
        head = f"\n\nHuman: Help me with {split} task {i}."
        if i % 2:
            head += "\n\nAssistant: Which part?\n\nHuman: All of it."
        rows.append({"chosen": f"{head}\n\nAssistant: Step one: plan {i}.",
                     "rejected": f"{head}\n\nAssistant: No."})
    return rows


def test_hh_golden_jsonl_and_hh_rlhf_gzip(tmp_path):
    golden = {s: tmp_path / f"golden_{s}.jsonl" for s in SPLITS}
    rlhf = {s: tmp_path / "harmless-base" / f"{s}.jsonl.gz" for s in SPLITS}
    rlhf["train"].parent.mkdir()
    for s, n in (("train", 20), ("test", 8)):
        text = "".join(json.dumps(r) + "\n" for r in _hh_rows(s, n))
        golden[s].write_text(text)
        with gzip.open(rlhf[s], "wt") as fh:
            fh.write(text)
    for name, files in (("hh_golden", golden), ("hh_rlhf", rlhf)):
        spec = {"source": "hf", "path": "json", "data_files": {s: str(p) for s, p in files.items()},
                "layout": "hh", "splits": {"train": "train", "test": "test"},
                "cache_dir": str(tmp_path / f"cache_{name}")}
        prepare_preference_dataset(name, spec, tmp_path / name, 3)
        got = _all(tmp_path / name)
        for s, n in (("train", 20), ("test", 8)):
            rows = _hh_rows(s, n)
            assert len(got[s]) == n
            by_prompt = {p.prompt: p for p in got[s]}
            for r in rows:
                cut = r["chosen"].rindex("\n\nAssistant:") + len("\n\nAssistant:")
                pair = by_prompt[r["chosen"][:cut]]
                assert pair.prompt + pair.chosen == r["chosen"] and pair.prompt + pair.rejected == r["rejected"]


def test_hh_prompt_mismatch_and_a_prompt_in_both_hub_splits(tmp_path):
    train, test = _hh_rows("train", 12), _hh_rows("test", 6)
    train[2]["rejected"] = "\n\nHuman: Something else.\n\nAssistant: No."
    train[5] = dict(test[0])  # the same conversation in both hub splits
    files = {"train": _parquet(tmp_path / "train.parquet", train), "test": _parquet(tmp_path / "test.parquet", test)}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "hh",
            "splits": {"train": "train", "test": "test"}, "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(DataError, match="row 3, field 'rejected': prompt differs from the chosen one"):
        prepare_preference_dataset("hh", spec, tmp_path / "a", 1)
    manifest = prepare_preference_dataset("hh", {**spec, "on_bad_row": "skip"}, tmp_path / "b", 1)
    assert manifest["dropped"]["records"] == {"group also in the test split": 1}
    assert manifest["splits"]["train"]["pairs"] == 10 and manifest["splits"]["test"]["pairs"] == 6
    train_prompts = {p.prompt for p in read_preference_split(tmp_path / "b", "train", "pairs")}
    assert not train_prompts & {p.prompt for p in read_preference_split(tmp_path / "b", "test", "pairs")}


def test_one_hub_split_is_cut_by_group_hash(tmp_path):
    files = {"train": _parquet(tmp_path / "train.parquet", _hh_rows("train", 80))}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "hh", "split": "train",
            "test_fraction": 0.3, "limit": 60, "cache_dir": str(tmp_path / "cache")}
    manifest = prepare_preference_dataset("hh", spec, tmp_path / "out", 9)
    assert manifest["test_fraction"] == 0.3 and manifest["pairs"] == 60
    assert 0 < manifest["splits"]["test"]["pairs"] < 60


def test_missing_column_lists_the_columns_found(tmp_path):
    files = {"train": _parquet(tmp_path / "t.parquet", [{"text": "a", "score": 1}] * 4)}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "hh", "split": "train",
            "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(DataError, match=r"needs column\(s\) \['chosen', 'rejected'\] but the data has columns \['text', 'score'\]"):
        prepare_preference_dataset("hh", spec, tmp_path / "out", 1)


# ---------------------------------------------------------------- OpenAssistant/oasst1


def _m(mid, parent, role, text, rank=None, tree="t1", lang="en", deleted=False):
    return {"message_id": mid, "parent_id": parent, "user_id": "u", "created_date": "2023-02-05T00:00:00",
            "text": text, "role": role, "lang": lang, "review_count": 3, "review_result": True,
            "deleted": deleted, "rank": rank, "synthetic": False, "model_name": None,
            "detoxify": None, "message_tree_id": tree, "tree_state": "ready_for_export",
            "emojis": None, "labels": None}


def _oasst_rows():
    return [
        _m("r1", None, "prompter", "What is a prime?"),
        _m("a1", "r1", "assistant", "A number with two divisors.", 0),
        _m("a2", "r1", "assistant", "An odd number.", 2),
        _m("a3", "r1", "assistant", "A number only divisible by 1 and itself.", 1),
        _m("a4", "r1", "assistant", "Unranked reply."),
        _m("a5", "r1", "assistant", "Deleted reply.", 3, deleted=True),
        _m("p2", "a1", "prompter", "Is 1 prime?"),
        _m("b1", "p2", "assistant", "Yes.", 1),
        _m("b2", "p2", "assistant", "No: it has one divisor.", 0),
        _m("r2", None, "prompter", "Was ist eine Primzahl?", tree="t2", lang="de"),
        _m("c1", "r2", "assistant", "Eine Zahl mit zwei Teilern.", 0, tree="t2", lang="de"),
        _m("c2", "r2", "assistant", "Eine gerade Zahl.", 1, tree="t2", lang="de"),
        _m("r3", None, "prompter", "Only one reply here.", tree="t3"),
        _m("d1", "r3", "assistant", "The one reply.", 0, tree="t3"),
    ]


P1 = "\n\nHuman: What is a prime?\n\nAssistant:"
P2 = "\n\nHuman: What is a prime?\n\nAssistant: A number with two divisors.\n\nHuman: Is 1 prime?\n\nAssistant:"
PDE = "\n\nHuman: Was ist eine Primzahl?\n\nAssistant:"
A1, A2, A3 = " A number with two divisors.", " An odd number.", " A number only divisible by 1 and itself."
B1, B2, C1, C2 = " Yes.", " No: it has one divisor.", " Eine Zahl mit zwei Teilern.", " Eine gerade Zahl."


@pytest.mark.parametrize(
    ("pairing", "expected"),
    [
        ("best_vs_rest", [(P1, A1, A3), (P1, A1, A2), (P2, B2, B1), (PDE, C1, C2)]),
        ("best_vs_worst", [(P1, A1, A2), (P2, B2, B1), (PDE, C1, C2)]),
        ("adjacent", [(P1, A1, A3), (P1, A3, A2), (P2, B2, B1), (PDE, C1, C2)]),
        ("all", [(P1, A1, A3), (P1, A1, A2), (P1, A3, A2), (P2, B2, B1), (PDE, C1, C2)]),
    ],
)
def test_oasst_tree_pairings(pairing, expected):
    rows = [(f"row {i}", r) for i, r in enumerate(_oasst_rows(), 1)]
    pairs, counts = oasst_pairs(rows, DropLog("oasst"), pairing=pairing)
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == expected
    assert {p.group for p in pairs} == {"t1", "t2"}
    assert counts["deleted"] == 1 and counts["unranked_replies"] == 1  # a4


def test_oasst_shaped_parquet_with_language_filter(tmp_path):
    train = _oasst_rows()
    val = [_m("v1", None, "prompter", "Name a colour.", tree="v"),
           _m("w1", "v1", "assistant", "Blue.", 0, tree="v"), _m("w2", "v1", "assistant", "Seven.", 1, tree="v")]
    files = {"train": _parquet(tmp_path / "train.parquet", train), "validation": _parquet(tmp_path / "val.parquet", val)}
    spec = {"source": "hf", "path": "parquet", "data_files": files, "layout": "oasst", "lang": "en",
            "pairing": "best_vs_rest", "splits": {"train": "train", "test": "validation"},
            "cache_dir": str(tmp_path / "cache")}
    manifest = prepare_preference_dataset("oasst", spec, tmp_path / "out", 1)
    got = _all(tmp_path / "out")
    assert sorted((p.prompt, p.chosen, p.rejected) for p in got["train"]) == sorted(
        [(P1, A1, A3), (P1, A1, A2), (P2, B2, B1)]
    )
    assert [(p.prompt, p.chosen, p.rejected) for p in got["test"]] == [
        ("\n\nHuman: Name a colour.\n\nAssistant:", " Blue.", " Seven.")
    ]
    assert manifest["details"]["loaded"]["train"]["oasst"]["other_lang"] == 1
    kto = read_preference_split(tmp_path / "out", "train", "kto")
    assert len(kto) == 6 and sum(r.desirable for r in kto) == 3  # best_vs_rest repeats the best reply


def test_oasst_bad_rows_name_the_row():
    rows = _oasst_rows()
    rows[2]["rank"] = "2"
    with pytest.raises(DataError, match=r"dataset o: row 3, field 'rank': not an integer"):
        oasst_pairs([(f"row {i}", r) for i, r in enumerate(rows, 1)], DropLog("o"))
    rows[2]["rank"], rows[3]["message_id"] = 2, "a1"
    with pytest.raises(DataError, match=r"row 4, field 'message_id': repeated"):
        oasst_pairs([(f"row {i}", r) for i, r in enumerate(rows, 1)], DropLog("o"))


# ---------------------------------------------------------------- hub ids, defaults and the script fallback


def test_known_hub_ids_get_layout_and_splits():
    assert with_hub_defaults({"source": "hf", "path": "HuggingFaceH4/ultrafeedback_binarized"})["splits"] == {
        "train": "train_prefs", "test": "test_prefs"}
    assert with_hub_defaults({"source": "hf", "path": "OpenAssistant/oasst1"})["layout"] == "oasst"
    kept = with_hub_defaults({"source": "hf", "path": "Anthropic/hh-rlhf", "split": "train", "layout": "hh"})
    assert "splits" not in kept
    for path in KNOWN_HUB:
        validate_preference_spec("d", {"source": "hf", "path": path, "data_dir": "harmless-base"})


def test_script_repository_falls_back_to_the_parquet_export(tmp_path, monkeypatch):
    calls = []
    local = datasets.Dataset.from_list(_hh_rows("train", 5))

    def fake_load(path, split=None, streaming=False, **kwargs):
        calls.append((path, kwargs.get("data_files")))
        if path != "parquet":
            raise RuntimeError("Dataset scripts are no longer supported, but found hh.py")
        return local

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    ds, exported = load_hub_split({"path": "someone/scripted", "name": "cfg"}, "train", "d")
    assert exported and len(ds) == 5
    assert calls[1] == ("parquet", {"train": "hf://datasets/someone/scripted@refs%2Fconvert%2Fparquet/cfg/train/*.parquet"})

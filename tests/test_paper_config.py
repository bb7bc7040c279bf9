"""config/paper.yaml: it validates, plans the whole study with the network cut off,
and every hub dataset's text comes out right from local files shaped like it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from datalign.core.config import load_yaml
from datalign.core.errors import ConfigError, DataError
from datalign.data import prepare_dataset, read_split
from datalign.studies import load_config

from .fixtures_hub import FIXTURES, fixture_for, hub_splits, local_spec, write_rows
from .workflow_helpers import REPO, SNAKEFILE, workflow_env

PAPER = REPO / "config" / "paper.yaml"
DEFAULT = REPO / "config" / "config.yaml"


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config(PAPER)


def hf_datasets(config: dict) -> dict[str, dict]:
    return {n: s for n, s in config["datasets"].items() if s["source"] == "hf"}


def test_paper_config_is_the_papers_study(paper):
    assert paper["probe"]["pretrained"] == "gpt2"
    assert (paper["tokenizer"]["kind"], paper["tokenizer"]["name"]) == ("hub", "gpt2")
    pre, fine = paper["experiments"]["pretrain"], paper["experiments"]["finetune"]
    assert pre["train_sets"] == ["uspto", "pubmed", "uspto_pubmed"]
    assert len(pre["train_sets"]) * len(pre["eval_sets"]) == 24  # the paper's 24 points
    assert paper["datasets"]["uspto_pubmed"]["components"] == {"uspto": 0.5, "pubmed": 0.5}
    # GPT-2 small from scratch: 12 x 768, which with GPT-2's vocabulary and 1024
    # positions is the 124M parameters of `gpt2` (tied head), counted by hand.
    arch, d, vocab = pre["architecture"], pre["architecture"]["n_embd"], 50257
    per_block = 12 * d * d + 13 * d  # attention 4d^2+4d, MLP 8d^2+5d, two LayerNorms 4d
    params = vocab * d + arch["n_positions"] * d + arch["n_layer"] * per_block + 2 * d
    assert params == 124_439_808
    assert fine["base"] == "probe" and fine["eval_sets"] == ["proofnet"]
    assert set(fine["train_sets"]) == {"af", "af_split", "proofnet", "leandojo", "docstrings",
                                       "c4", "wikitext103"}
    assert paper["datasets"]["proofnet"]["splits"] == {"train": "validation", "test": "test"}
    assert paper["task2vec"]["seq_len"] == 128
    # Distinct Task2Vec batches must fit in ProofNet's 185 validation statements.
    assert paper["task2vec"]["batch_size"] * paper["task2vec"]["num_batches"] <= 185
    for setting in ("pretrain", "finetune"):
        assert paper["experiments"][setting]["mixed_precision"] == "bf16"
    for rule in ("train", "evaluate", "task2vec"):
        assert paper["resources"][rule]["gpu"] == 1


def test_every_hub_dataset_has_a_fixture(paper):
    assert hf_datasets(paper), "paper.yaml names no hub datasets"
    for name, spec in hf_datasets(paper).items():
        assert (spec["path"], spec.get("name")) in FIXTURES, f"no fixture shaped like {name}"


@pytest.mark.parametrize(
    "name", sorted(n for n, s in load_yaml(PAPER)["datasets"].items() if s["source"] == "hf"))
def test_hub_template_renders_on_a_fixture(paper, name, tmp_path):
    spec = paper["datasets"][name]
    if spec.get("split") is not None:
        # Fractions sized for a fixture's few rows (paper.yaml's 0.2% would leave
        # validation empty); loading and templating are what this test is about.
        spec = {**spec, "fractions": {"validation": 0.2, "test": 0.2}}
    fixture = fixture_for(spec)
    manifest = prepare_dataset(name, local_spec(spec, tmp_path / "files"), tmp_path / name, seed=3)
    if spec.get("split") is not None:
        got = sorted(t for s in ("train", "validation", "test")
                     for t in read_split(tmp_path / name, s))
        rows = fixture.rows(spec["split"])
        want = sorted(t for t in map(fixture.expected, rows) if t is not None)
        assert got == want
        assert manifest["details"]["loaded"][spec["split"]]["rows"] == len(rows)
    else:
        for ours, hub in spec["splits"].items():
            want = sorted(t for t in map(fixture.expected, fixture.rows(hub)) if t is not None)
            assert sorted(read_split(tmp_path / name, ours)) == want, ours
    loaded = next(iter(manifest["details"]["loaded"].values()))
    assert loaded["columns"] == list(fixture.rows(hub_splits(spec)[0])[0])


def test_c4_streams_only_the_first_rows(paper, tmp_path):
    spec = {**paper["datasets"]["c4"], "limit": 7, "fractions": {"validation": 0.3, "test": 0.3}}
    assert spec["streaming"] is True
    manifest = prepare_dataset("c4", local_spec(spec, tmp_path / "files"), tmp_path / "c4", seed=3)
    got = sorted(t for s in ("train", "validation", "test") for t in read_split(tmp_path / "c4", s))
    rows = FIXTURES[("allenai/c4", "en")].rows("train")
    assert len(rows) > 7
    assert got == sorted(r["text"] for r in rows[:7])
    assert manifest["details"]["loaded"]["train"]["rows"] == 7


def test_join_errors(paper, tmp_path):
    spec = paper["datasets"]["leandojo"]
    bad_item = {**spec, "join": {"tactics": {**spec["join"]["tactics"], "item": "{goal}"}}}
    with pytest.raises(DataError, match=r"elements of 'traced_tactics' have no field 'goal'"):
        prepare_dataset("ld", local_spec(bad_item, tmp_path / "a"), tmp_path / "ld", seed=3)
    not_list = {**spec, "join": {"tactics": {"column": "file_path", "item": "{value}"}}}
    with pytest.raises(DataError, match=r"needs a list in column 'file_path', row 0 holds str"):
        prepare_dataset("ld", local_spec(not_list, tmp_path / "b"), tmp_path / "ld", seed=3)
    missing = {**spec, "join": {"tactics": {"column": "tactics_list", "item": "{tactic}"}}}
    with pytest.raises(DataError, match=r"the join of .* needs column\(s\) \['tactics_list'\]"):
        prepare_dataset("ld", local_spec(missing, tmp_path / "c"), tmp_path / "ld", seed=3)
    with pytest.raises(ConfigError, match=r"datasets\.ld\.join\.tactics\.cols: unknown key"):
        prepare_dataset("ld", {**spec, "join": {"tactics": {"cols": "x", "item": "y"}}},
                        tmp_path / "ld", seed=3)
    with pytest.raises(ConfigError, match=r"datasets\.ld\.join\.tactics\.item"):
        prepare_dataset("ld", {**spec, "join": {"tactics": {"column": "x"}}}, tmp_path / "ld", 3)
    assert not (tmp_path / "ld").exists()


def test_join_of_scalar_lists(tmp_path):
    path = tmp_path / "rows.json"
    write_rows([{"words": ["a", "b", "c"]}, {"words": []}, {"words": ["d"]}], "json", path)
    spec = {"source": "hf", "path": "json", "data_files": {"train": str(path)},
            "splits": {"train": "train"}, "join": {"joined": {"column": "words", "item": "<{value}>",
                                                              "sep": "+"}},
            "template": "{joined}", "cache_dir": str(tmp_path / "cache")}
    prepare_dataset("w", spec, tmp_path / "w", seed=0)
    assert sorted(read_split(tmp_path / "w", "train")) == ["<a>+<b>+<c>", "<d>"]


# ---------------------------------------------------------------- planning offline

# Run snakemake in a child process whose sockets refuse to connect or resolve,
# and record which modules the DAG building imported.
_OFFLINE_RUNNER = textwrap.dedent("""
    import atexit, json, socket, sys
    def refuse(*args, **kwargs):
        raise OSError("network access during DAG building: " + repr(args[:2]))
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    out = sys.argv.pop(1)
    atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
    sys.argv[0] = "snakemake"
    from snakemake.cli import main
    main()
""")


def plan_offline(workdir: Path, *configfiles: Path) -> tuple[Counter, list[str], str]:
    """Dry-run the workflow with the network cut off: (jobs per rule, modules imported, output)."""
    runner, modules = workdir / "offline_snakemake.py", workdir / "modules.json"
    runner.write_text(_OFFLINE_RUNNER)
    cmd = [sys.executable, str(runner), str(modules), "-n", "--snakefile", str(SNAKEFILE),
           "--directory", str(workdir), "--configfile", *map(str, configfiles)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=workflow_env(), timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    stats = output[output.index("Job stats:"):]
    counts = Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)})
    return counts, json.loads(modules.read_text()), output


def expected_jobs(config: dict) -> dict[str, int]:
    """Jobs per rule implied by the config, counted from its keys directly."""
    exps = config["experiments"]
    used = set()
    for exp in exps.values():
        used |= set(exp["train_sets"]) | set(exp["eval_sets"])
    for name in list(used):
        used |= set(config["datasets"][name].get("components", {}))
    embedded = {(t, "train") for e in exps.values() for t in e["train_sets"]}
    embedded |= {(v, "test") for e in exps.values() for v in e["eval_sets"]}
    return {
        "prepare_data": len(used),
        "tokenize": len(used),
        "train_tokenizer": 1,
        "probe": 1,
        "task2vec": len(embedded),
        "alignment": 1,
        "train": sum(len(e["train_sets"]) for e in exps.values()),
        "evaluate": sum(len(e["train_sets"]) * len(e["eval_sets"]) for e in exps.values()),
        "correlate": len(exps),
        "loss_curves": len(exps),
        "summary": 1,
        "all": 1,
    }


def test_paper_study_plans_offline(paper, tmp_path):
    counts, modules, output = plan_offline(tmp_path, PAPER)
    want = expected_jobs(paper)
    assert {rule: counts[rule] for rule in want} == want
    # The numbers for this config, spelled out: 12 datasets (3 Pile + 9 others),
    # 19 embedded sets, 3 + 7 models, 24 + 7 evaluations.
    assert (want["prepare_data"], want["task2vec"], want["train"], want["evaluate"]) == (12, 19, 10, 31)
    for heavy in ("datasets", "huggingface_hub", "transformers", "torch", "accelerate"):
        assert heavy not in modules, f"building the DAG imported {heavy}"
    assert "network access during DAG building" not in output
    assert re.search(r"rule train:.*?resources:[^\n]*gpu=1", output, re.S)


def test_paper_config_is_not_merged_over_the_default(paper, tmp_path):
    # The default study is the workflow profile's `configfile: config/config.yaml`;
    # a --configfile on the command line replaces it, so paper.yaml is the whole
    # study. A default config with a broken dataset entry would fail validation
    # if it were merged in.
    (tmp_path / "config").mkdir()
    broken = DEFAULT.read_text().replace("\ndatasets:\n", "\ndatasets:\n  broken_entry: {source: nowhere}\n", 1)
    (tmp_path / "config" / "config.yaml").write_text(broken)
    counts, _, output = plan_offline(tmp_path, PAPER)
    assert "broken_entry" not in output
    want = expected_jobs(paper)
    assert {rule: counts[rule] for rule in want} == want

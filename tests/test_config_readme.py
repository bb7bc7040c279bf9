"""The worked example of config/README.md is a config that validates, and its local
datasets prepare as the README says (a file's rows stay in one split)."""

from __future__ import annotations

import json
import re

import yaml

from datalign.data.prepare import prepare_dataset, read_documents
from datalign.studies import validate_study_config

from .conftest import REPO

README = REPO / "config" / "README.md"


def worked_example() -> dict:
    text = README.read_text(encoding="utf-8")
    marker = text.index("<!-- worked-example")
    block = re.search(r"```yaml\n(.*?)```", text[marker:], re.S)
    assert block, "the worked example's yaml block is missing"
    return yaml.safe_load(block.group(1))


def _write_proof_files(root, name, n_files=6, per_file=5):
    folder = root / "data" / name
    folder.mkdir(parents=True)
    for f in range(n_files):
        rows = [{"file": f"Lib/File{f}.lean", "statement": f"theorem t{f}_{i} : {i} + 0 = {i}",
                 "proof": f"by simp [Nat.add_zero] -- {name} {f} {i}"} for i in range(per_file)]
        (folder / f"part{f}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_worked_example_validates_and_expands_study_sets(monkeypatch, tmp_path):
    example = worked_example()
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config = {**default, **{k: v for k, v in example.items() if k != "datasets"}}
    config["datasets"] = {**default["datasets"], **example["datasets"]}
    validate_study_config(config)
    assert config["results_dir"] == "studies/proofs"
    assert {"proofs", "related_proofs", "bbc_news"} <= set(config["tokenizer"]["train_on"])
    assert "news_related_50" not in config["tokenizer"]["train_on"]  # a mixture counts by its components
    assert config["interventions"] == {"related_proofs": ["proofs"]}


def test_group_field_keeps_a_files_rows_in_one_split(monkeypatch, tmp_path):
    example = worked_example()
    monkeypatch.chdir(tmp_path)
    _write_proof_files(tmp_path, "proofs")
    manifest = prepare_dataset("proofs", example["datasets"]["proofs"], tmp_path / "out", seed=1)
    assert manifest["splits"]["test"]["rows"] > 0
    groups = {s: {d.group for d in read_documents(tmp_path / "out", s)}
              for s in ("train", "test") if manifest["splits"][s]["rows"]}
    assert not groups["train"] & groups["test"]
    docs = read_documents(tmp_path / "out", "train")
    assert docs[0].text.startswith("theorem: ") and "\nproof: by simp" in docs[0].text

"""The task2vec block: one definition, the generated schema agreeing with the dataclass,
estimators discovered and owning their options, no import cycle."""

from __future__ import annotations

import ast
import copy
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from datalign.core.errors import ConfigError  # noqa: E402
from datalign.lm.tokens import SequenceBatch  # noqa: E402
from datalign.task2vec import (  # noqa: E402
    BatchFisher,
    Options,
    Task2VecConfig,
    available_estimators,
    embed_batches,
    embedding_parameters,
    estimator_options,
    option,
    register_estimator,
    task2vec_schema,
)
from datalign.task2vec import registry as registry_module  # noqa: E402
from datalign.task2vec.estimators.fast import FastOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "datalign" / "task2vec"

# Values tried for every key: wrong types, bound edges, whole-number floats.
POOL = [None, True, False, "x", "5e-5", "", [], {}, [1], -1, 0, 1, 2, 3, 4, 5, 8, 8.0, 2.5, 0.0, 0.5, 5e-5,
        -1e-9, 1e-8, 1.0]


def schema_accepts(block) -> bool:
    return jsonschema.Draft202012Validator(task2vec_schema()).is_valid(block)


def dataclass_accepts(block) -> bool:
    try:
        Task2VecConfig.from_dict(copy.deepcopy(block))
    except ConfigError:
        return False
    return True


def blocks_to_try() -> list[dict]:
    """Every key of the block (common and per estimator) with every pool value and every allowed value."""
    schema = task2vec_schema()
    blocks: list[dict] = [{}, {"estimatr": "paper"}, {"options": {}}, {"fast_head_fit": "exact"}]
    for key, sub in schema["properties"].items():
        if sub.get("type") == "object":
            blocks += [{key: v} for v in POOL]
            for inner, spec in sub["properties"].items():
                values = POOL + list(spec.get("enum", []))
                blocks += [{key: {inner: v}} for v in values]
                blocks += [{"estimator": key, key: {inner: v}} for v in values]
            blocks.append({key: {"nope": 1}})
        else:
            blocks += [{key: v} for v in POOL + list(sub.get("enum", []))]
    return blocks


def test_schema_is_a_valid_draft_2020_12_schema_with_every_key_documented():
    schema = task2vec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert set(props) == {"estimator", "batch_size", "seq_len", "num_batches", "head_epochs", "head_lr",
                          "head_minibatch", "weight_decay", "adam_eps", "parameters", "last_k", "distance",
                          "fast"}
    for key, sub in props.items():
        assert sub["description"], key
        if key == "fast":
            assert sub["additionalProperties"] is False and "default" not in sub
            assert set(sub["properties"]) == {"head_fit", "precision", "retain_graph"}
            for inner in sub["properties"].values():
                assert {"type", "default", "description"} <= set(inner)
        else:
            assert {"type", "default"} <= set(sub), key
    assert props["seq_len"]["minimum"] == 4 and props["num_batches"]["minimum"] == 2  # the stricter bounds
    assert props["estimator"]["enum"] == ["fast", "paper"]
    assert props["fast"]["properties"]["precision"]["enum"] == ["auto", "float32", "bfloat16"]
    # defaults: the schema's fill in the dataclass's
    defaults = {k: v["default"] for k, v in props.items() if "default" in v}
    assert defaults == Task2VecConfig().to_dict()
    fast_defaults = {k: v["default"] for k, v in props["fast"]["properties"].items()}
    assert fast_defaults == FastOptions().to_dict() == Task2VecConfig(estimator="fast").to_dict()["fast"]


def test_schema_and_dataclass_accept_the_same_blocks():
    blocks = blocks_to_try()
    assert len(blocks) > 300
    verdicts = [(schema_accepts(b), dataclass_accepts(b)) for b in blocks]
    disagree = [b for b, (s, d) in zip(blocks, verdicts, strict=True) if s != d]
    assert not disagree, disagree[:10]
    # both sides of the line are exercised
    assert sum(s for s, _ in verdicts) > 50 and sum(not s for s, _ in verdicts) > 150


@pytest.mark.parametrize(
    ("block", "valid"),
    [
        ({"seq_len": 4, "num_batches": 2}, True),
        ({"seq_len": 3}, False),  # the schema's stricter bounds, now the dataclass's too
        ({"num_batches": 1}, False),
        ({"num_batches": 8.0}, True),  # a whole-number float is an integer for both
        ({"batch_size": True}, False),
        ({"head_lr": "5e-5"}, False),  # YAML's string: refused by both (was converted before)
        ({"estimator": "fast", "fast": {"head_fit": "exact", "precision": "bfloat16", "retain_graph": False}}, True),
        ({"estimator": "paper", "fast": {"precision": "float32"}}, True),  # checked even if unused
        ({"estimator": "paper", "fast": {"precision": "fp16"}}, False),
        ({"fast": None}, False),
        ({"paper": {}}, False),  # paper has no options
    ],
)
def test_schema_and_dataclass_on_chosen_blocks(block, valid):
    assert schema_accepts(block) is valid
    assert dataclass_accepts(block) is valid


def test_the_study_configs_task2vec_blocks_are_accepted_by_both():
    blocks = {}
    for path in sorted((ROOT / "config").rglob("*.yaml")) + sorted((ROOT / "tests" / "configs").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("task2vec"), dict):
            blocks[path] = data["task2vec"]
    assert blocks
    for path, block in blocks.items():
        assert schema_accepts(block), path
        assert Task2VecConfig.from_dict(block).to_dict()["estimator"] == block.get("estimator", "paper")


def test_one_line_errors_name_the_key():
    for block, message in [
        ({"fast": {"precision": "fp8"}}, "task2vec.fast.precision: must be one of auto, float32, bfloat16, got 'fp8'"),
        ({"seq_len": 2}, "task2vec.seq_len: must be an integer >= 4, got 2"),
        ({"head_lr": 0}, "task2vec.head_lr: must be a number > 0, got 0"),
        ({"fast": {"retain_graph": "no"}}, "task2vec.fast.retain_graph: must be true or false, got 'no'"),
        ({"fast": []}, "task2vec.fast: must be a mapping, got []"),
    ]:
        with pytest.raises(ConfigError) as err:
            Task2VecConfig.from_dict(block)
        assert str(err.value) == message and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="write 5.0e-5"):
        Task2VecConfig.from_dict({"head_lr": "5e-5"})
    with pytest.raises(ConfigError, match="task2vec.head_lr: must be a number > 0"):
        Task2VecConfig(head_lr=float("nan"))  # stricter than a schema can say


def test_config_round_trips_through_its_dict():
    cfg = Task2VecConfig.from_dict({"estimator": "fast", "seq_len": 16, "fast": {"precision": "float32"}})
    d = cfg.to_dict()
    assert d["fast"] == {"head_fit": "frozen", "precision": "float32", "retain_graph": True}
    assert "fast_precision" not in d and schema_accepts(d)
    assert Task2VecConfig.from_dict(d) == cfg and hash(Task2VecConfig.from_dict(d)) == hash(cfg)


def test_with_options_changes_the_named_options_and_keeps_the_rest():
    cfg = Task2VecConfig.from_dict({"estimator": "paper", "seq_len": 16, "fast": {"precision": "float32"}})
    changed = cfg.with_options("fast", head_fit="exact")
    assert changed.options_for("fast") == FastOptions(head_fit="exact", precision="float32")
    assert changed.estimator == "paper" and changed.seq_len == 16
    assert cfg.options_for("fast").head_fit == "frozen"  # the original is unchanged
    with pytest.raises(ConfigError, match="task2vec.fast.precision: must be one of"):
        cfg.with_options("fast", precision="fp8")
    with pytest.raises(ConfigError, match="unknown"):
        cfg.with_options("fast", nope=1)
    with pytest.raises(ConfigError, match="estimator 'paper' has no options"):
        cfg.with_options("paper", head_fit="exact")


# ---------------------------------------------------------------- a third estimator, from a test


@dataclass(frozen=True)
class ToyOptions(Options):
    scale: float = option(1.0, "multiplies the Fisher", exclusive_minimum=0)
    mode: str = option("square", "square: the squared weights; abs: their absolute values", enum=("square", "abs"))


class Toy:
    """The squared (or absolute) weights times a scale."""

    name = "toy"

    def estimate(self, probe, batch, cfg, seed):
        opts = cfg.options_for("toy")
        f = torch.square if opts.mode == "square" else torch.abs
        return BatchFisher({n: f(p.detach().double()) * opts.scale for n, p in embedding_parameters(probe, cfg)})


@pytest.fixture
def toy():
    register_estimator("toy", options=ToyOptions)(Toy)
    try:
        yield Toy
    finally:
        registry_module._REGISTRY.pop("toy", None)


def test_a_third_estimator_registered_from_a_test_is_configured_checked_and_documented(toy):
    assert "toy" in available_estimators() and estimator_options("toy") is ToyOptions
    cfg = Task2VecConfig.from_dict({"estimator": "toy", "toy": {"scale": 2}})
    assert cfg.options_for("toy") == ToyOptions(scale=2) and cfg.to_dict()["toy"] == {"scale": 2, "mode": "square"}
    with pytest.raises(ConfigError, match=r"task2vec.toy.mode: must be one of square, abs, got 'cube'"):
        Task2VecConfig.from_dict({"estimator": "toy", "toy": {"mode": "cube"}})
    schema = task2vec_schema()
    assert "toy" in schema["properties"]["estimator"]["enum"]
    assert "The squared (or absolute) weights" in schema["properties"]["estimator"]["description"]
    assert schema["properties"]["toy"]["properties"]["scale"] == {
        "type": "number", "exclusiveMinimum": 0, "default": 1.0, "description": "multiplies the Fisher"}
    disagree = [b for b in blocks_to_try() if schema_accepts(b) != dataclass_accepts(b)]
    assert not disagree, disagree[:10]
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_embd=8, n_layer=1, n_head=2, n_positions=8))
    ids = torch.randint(0, 32, (2, 6))
    batches = [SequenceBatch(ids, torch.ones_like(ids), np.arange(2))]
    one = embed_batches(model, batches, Task2VecConfig(estimator="toy"), seed=0, progress=False)
    two = embed_batches(model, batches, cfg, seed=0, progress=False)
    assert one.metadata["estimator"] == "toy" and one.metadata["config"]["toy"]["scale"] == 1.0
    np.testing.assert_allclose(two.embeddings, 2 * one.embeddings, rtol=1e-6)


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_new_estimator_module_is_found_without_editing_anything(tmp_path):
    """One new file in the estimators package (its path extended to a temporary folder here) is all it takes."""
    (tmp_path / "mine.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from datalign.task2vec.options import Options, option
        from datalign.task2vec.registry import BatchFisher, register_estimator

        @dataclass(frozen=True)
        class MineOptions(Options):
            steps: int = option(10, "how many steps", minimum=1)

        @register_estimator("mine", options=MineOptions)
        class Mine:
            """Mine: a test estimator."""
            name = "mine"
            def estimate(self, probe, batch, cfg, seed):
                return BatchFisher({})
    '''))
    (tmp_path / "_private.py").write_text("raise RuntimeError('modules starting with _ are not imported')\n")
    proc = run_python('''
        import sys
        import datalign.task2vec.estimators as pkg
        pkg.__path__.append(TMP)
        from datalign.task2vec import Task2VecConfig, available_estimators, task2vec_schema
        assert "datalign.task2vec.estimators.fast" not in sys.modules  # nothing imported before the first lookup
        assert available_estimators() == ("fast", "mine", "paper"), available_estimators()
        cfg = Task2VecConfig.from_dict({"estimator": "mine", "mine": {"steps": 3}})
        assert cfg.options_for("mine").steps == 3
        assert task2vec_schema()["properties"]["mine"]["properties"]["steps"]["minimum"] == 1
        try:
            Task2VecConfig.from_dict({"mine": {"steps": 0}})
        except Exception as err:
            assert str(err) == "task2vec.mine.steps: must be an integer >= 1, got 0", err
        else:
            raise AssertionError("not checked")
        print("ok")
    '''.replace("TMP", repr(str(tmp_path))), tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


# ---------------------------------------------------------------- imports


def task2vec_imports() -> dict[str, set[str]]:
    """Module -> the datalign.task2vec modules it imports anywhere (functions and TYPE_CHECKING included)."""
    graph: dict[str, set[str]] = {}
    modules = {".".join(("datalign", *p.relative_to(PACKAGE.parent).with_suffix("").parts)).removesuffix(".__init__")
               : p for p in PACKAGE.rglob("*.py")}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {t for t in targets if t in modules and t != "datalign.task2vec" and t != name}
        graph[name] = deps
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
    return seen


def test_no_import_cycle_between_config_and_registry():
    graph = task2vec_imports()
    assert "datalign.task2vec.registry" in graph["datalign.task2vec.config"]
    assert "datalign.task2vec.config" not in reachable(graph, "datalign.task2vec.registry")
    # the registry imports no other part of the package but the estimators' (empty) package, whose
    # modules it imports by discovery at the first lookup
    assert graph["datalign.task2vec.registry"] == {"datalign.task2vec.estimators"}
    assert graph["datalign.task2vec.estimators"] == set()
    # and the package's static imports have no cycle at all
    cyclic = [m for m in graph if m in reachable(graph, m)]
    assert not cyclic, cyclic


@pytest.mark.parametrize("order", [("config", "registry"), ("registry", "config")])
def test_config_and_registry_import_in_either_order(order, tmp_path):
    first, second = order
    proc = run_python(f'''
        import importlib
        importlib.import_module("datalign.task2vec.{first}")
        importlib.import_module("datalign.task2vec.{second}")
        from datalign.task2vec.config import Task2VecConfig
        from datalign.task2vec.registry import available_estimators
        assert available_estimators() == ("fast", "paper")
        assert Task2VecConfig.from_dict({{"estimator": "fast"}}).options_for("fast").precision == "auto"
        print("ok")
    ''', tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]

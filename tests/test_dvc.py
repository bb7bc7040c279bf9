"""DVC over the workflow: stages, push and pull through a real local remote,
Snakemake on pulled artifacts, partial pulls, and a damaged remote.

The tiny study (the session's ``study`` fixture) is recorded with ``dvc commit``
in a throwaway git repository of this project whose params.yaml names the tiny
config, pushed to a remote in a temporary directory, and pulled into fresh clones.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .workflow_helpers import REPO, TINY, workflow_env

pytestmark = pytest.mark.integration

DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC_YAML["stages"]
FAMILIES = ["data", "probe", "task2vec", "alignment", "training", "evaluation", "correlation"]
EXPENSIVE = {"prepare_data", "probe", "task2vec", "train", "evaluate"}


# ------------------------------------------------------------------ helpers


def _env(tmp: Path) -> dict[str, str]:
    env = workflow_env()
    env.update(
        DVC_NO_ANALYTICS="1",
        # nothing from this machine's DVC set-up, nothing left in it
        DVC_SITE_CACHE_DIR=str(tmp / "dvc-site-cache"),
        DVC_GLOBAL_CONFIG_DIR=str(tmp / "dvc-global"),
        DVC_SYSTEM_CONFIG_DIR=str(tmp / "dvc-system"),
        # the stages call `snakemake` by name: the one of this interpreter
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.org",
        GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.org",
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True,
         timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def dvc(cwd: Path, env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd, env, check=check)


def git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return _run(["git", *args], cwd, env)


def snakemake(cwd: Path, env: dict[str, str], *args: str, configfile: str = "tests/configs/tiny.yaml",
              check: bool = True) -> subprocess.CompletedProcess:
    """Snakemake as a user runs it in a checkout (Snakefile and profile found by itself)."""
    return _run([sys.executable, "-m", "snakemake", "--configfile", configfile, *args], cwd, env,
                check=check)


def dry_run_jobs(output: str) -> list[tuple[str, tuple[str, ...]]]:
    """(rule, outputs) of every job a `snakemake -n` printed."""
    jobs, rule = [], None
    for line in output.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m.group(1)
            jobs.append((rule, ()))
        elif rule and (m := re.match(r"^\s+output: (.*)$", line)):
            jobs[-1] = (rule, tuple(sorted(m.group(1).split(", "))))
    return jobs


def scheduled_rules(proc: subprocess.CompletedProcess) -> set[str]:
    return {rule for rule, _ in dry_run_jobs(proc.stdout + proc.stderr)}


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def stage_outs(name: str, stages: dict | None = None) -> list[str]:
    """A stage's outputs, with params.yaml's results_dir (the default, `results`) filled in."""
    stages = STAGES if stages is None else stages
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages[name].get("outs", [])]
    return [o.replace("${results_dir}", "results") for o in outs]


def remote_object(remote: Path, path: Path) -> Path:
    """Where a DVC 3 remote keeps the content of ``path`` (md5 of its bytes)."""
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    return remote / "files" / "md5" / digest[:2] / digest[2:]


def project_files() -> list[str]:
    """The files of this checkout that git tracks or would track (not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    return sorted({f for f in listed if f and (REPO / f).is_file()})


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def pushed(study, tmp_path_factory):
    """A git repository of this project with the tiny study recorded in dvc.lock and
    pushed to a local remote. Returns (origin, remote, env)."""
    workdir, _ = study
    tmp = tmp_path_factory.mktemp("dvc")
    env = _env(tmp)
    origin, remote = tmp / "origin", tmp / "remote"
    for name in project_files():
        (origin / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, origin / name)
    (origin / "params.yaml").write_text(f"config: {TINY.relative_to(REPO)}\nresults_dir: results\n")
    # The stages of the studies the tiny config enables (a user's step after changing params.yaml).
    _run([sys.executable, "-m", "datalign.cli", "dvc-yaml"], origin, env)
    git(origin, env, "init", "-q")
    git(origin, env, "add", "-A")
    git(origin, env, "commit", "-q", "-m", "project")
    shutil.copytree(workdir / "results", origin / "results")
    # The study ran with plain snakemake: record it instead of recomputing it.
    dvc(origin, env, "commit", "--force")
    status = dvc(origin, env, "status")
    assert "up to date" in status.stdout, f"the recorded study is not what dvc.yaml describes:\n{status.stdout}"
    git(origin, env, "add", "dvc.lock")
    git(origin, env, "commit", "-q", "-m", "tiny study")
    remote.mkdir()
    dvc(origin, env, "remote", "add", "--local", "--default", "store", str(remote))
    dvc(origin, env, "push")
    return origin, remote, env


def clone(pushed, dest: Path, remote: Path | None = None) -> Path:
    """A fresh clone of the origin with the remote configured (verify on: see README.md, "Sharing results with DVC")."""
    origin, default_remote, env = pushed
    git(origin.parent, env, "clone", "-q", str(origin), str(dest))
    dvc(dest, env, "remote", "add", "--local", "--default", "store", str(remote or default_remote))
    dvc(dest, env, "remote", "modify", "--local", "store", "verify", "true")
    return dest


@pytest.fixture(scope="module")
def pulled(pushed, tmp_path_factory):
    """A fresh clone after a full `dvc pull`."""
    dest = clone(pushed, tmp_path_factory.mktemp("pulled") / "clone")
    dvc(dest, pushed[2], "pull")
    return dest


# ------------------------------------------------------------------ the stages


def _rule_table() -> dict[str, tuple[str, str | None]]:
    """rule name -> (its rule file, its script), read from workflow/rules/**/*.smk.

    Of a rule defined twice (one definition per configuration: task2vec_single.smk and
    task2vec_grouped.smk), the one that runs a script."""
    table = {}
    for smk in sorted((REPO / "workflow" / "rules").rglob("*.smk")):
        for block in re.split(r"(?m)^(?=rule \w+:)", smk.read_text())[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            script = re.search(r'script:\s*\n\s*"(?:\.\./)+scripts/([\w./]+)"', block)
            if name not in table or script:
                table[name] = (str(smk.relative_to(REPO)),
                               f"workflow/scripts/{script.group(1)}" if script else None)
    return table


def _allowed_rules(stage: str) -> list[str]:
    cmd = STAGES[stage]["cmd"].split()
    return cmd[cmd.index("--allowed-rules") + 1:]


def _datalign_closure(scripts: list[Path]) -> set[str]:
    """Every src/datalign file the scripts import, directly or through each other."""
    src = REPO / "src"
    seen: set[Path] = set()
    todo = list(scripts)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                     if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                parts = name.split(".")
                if parts[0] != "datalign":
                    continue
                for i in range(1, len(parts) + 1):
                    base = src.joinpath(*parts[:i])
                    for candidate in (base / "__init__.py", base.with_suffix(".py")):
                        if candidate.is_file():
                            todo.append(candidate)
    return {str(p.relative_to(REPO)) for p in seen if p.is_relative_to(src)}


@pytest.mark.parametrize("stage", ["study", *FAMILIES])
def test_stage_deps_name_the_code_it_runs(stage):
    rules = _rule_table()
    deps = [d.replace("${results_dir}", "results") for d in STAGES[stage]["deps"]]
    family = [r for r in _allowed_rules(stage) if r != f"dvc_{stage}"]
    assert family and all(r in rules for r in family), family
    scripts = [REPO / rules[r][1] for r in family]
    needed = {rules[r][0] for r in family} | {rules[r][1] for r in family} | _datalign_closure(scripts)
    missing = [f for f in sorted(needed) if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert not missing, f"stage {stage} runs code it does not depend on: {missing}"


def test_dvc_yaml_is_generated_from_the_pipeline_table():
    """dvc.yaml is the pipeline table's rendering, nothing edited by hand."""
    from datalign.studies.pipeline import all_families, dvc_yaml

    assert (REPO / "dvc.yaml").read_text() == dvc_yaml(REPO), "run `datalign dvc-yaml`"
    assert list(STAGES)[: len(FAMILIES) + 1] == ["study", *FAMILIES]
    assert set(STAGES) <= {f.name for f in all_families()}


def test_ea_runs_params_are_what_the_align_job_reads_not_the_judge(tmp_path):
    """Under `dvc repro` a new reward model (or its batch / context) leaves ea_runs up to date, as in
    Snakemake (rule ea_align's params); the generation keys and the align job's evaluation keys rerun
    it. Every listed key resolves in study.yaml with the judge on and off: DVC fails on a missing one."""
    from dvc.dependency.param import read_param_file
    from dvc.fs import LocalFileSystem

    from datalign.core.config import load_yaml
    from datalign.studies import get_study, validate_study_config

    ((file, keys),) = STAGES["ea_runs"]["params"][0].items()
    assert file == "${results_dir}/study.yaml" and not [k for k in keys if "judge" in k]
    study = get_study("efficient_alignment")
    judge = {"model": "some/reward-model", "max_new_tokens": 6, "max_prompts": 8}

    def params(edit):
        """ea_runs' parameter values as DVC reads them from the study.yaml this config resolves to."""
        config = load_yaml(REPO / "tests" / "configs" / "tiny_efficient_alignment.yaml")
        edit(config["efficient_alignment"])
        validate_study_config(config)
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump({"config": config, "plan": study.plan(config)}, sort_keys=True))
        values = read_param_file(LocalFileSystem(), str(path), keys, flatten=True)
        assert set(values) == set(keys), f"missing from study.yaml: {sorted(set(keys) - set(values))}"
        return values

    def with_judge(**change):
        return lambda s: s["evaluation"].update(judge={**judge, **change})

    off, on = params(lambda s: None), params(with_judge())
    assert off["plan.efficient_alignment_generation"] is None
    assert on["plan.efficient_alignment_generation"] == {"max_new_tokens": 6, "max_prompts": 8}
    # the judge job's own keys: ea_runs stays up to date
    for change in ({"model": "other/reward-model"}, {"batch_size": 2}, {"max_length": 128}):
        assert params(with_judge(**change)) == on, change
    # how the completions are generated, and the implicit-reward evaluation: ea_runs reruns
    for change in ({"max_new_tokens": 12}, {"max_prompts": 4}):
        assert params(with_judge(**change)) != on, change
    for key, value in (("max_pairs", 5), ("batch_size", 3), ("bootstrap", 50), ("confidence", 0.9)):
        assert params(lambda s, k=key, v=value: s["evaluation"].update({k: v})) != off, key
    assert params(lambda s: s["training"].update(lora={"r": 8})) != off
    assert params(lambda s: s["scaling"].update(bootstrap=60)) == off


def test_stage_targets_are_what_rule_all_builds(tmp_path):
    """Each stage's target builds exactly the jobs of its rules that `rule all` needs,
    the families share no rule, and every job writes inside its stage's outs."""
    env = workflow_env()
    snake = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
             "--directory", str(tmp_path), "--configfile", str(TINY), "-n"]
    everything = dry_run_jobs(_run(snake, REPO, env).stdout)
    owner: dict[str, str] = {}
    for stage in ["study", *FAMILIES]:
        for rule in _allowed_rules(stage):
            assert rule not in owner, f"rule {rule} is in stages {owner.get(rule)} and {stage}"
            owner[rule] = stage
    built = {rule for rule, _ in everything} - {"all"}
    assert built - set(owner) == set(), "a rule of the study belongs to no stage"
    for stage in ["study", *FAMILIES]:
        family = set(_allowed_rules(stage))
        jobs = dry_run_jobs(_run([*snake, f"dvc_{stage}"], REPO, env).stdout)
        mine = sorted(j for j in jobs if j[0] in family and j[0] != f"dvc_{stage}")
        assert mine == sorted(j for j in everything if j[0] in family), stage
        outs = stage_outs(stage)
        for rule, outputs in mine:
            stray = [o for o in outputs if not any(o == d or o.startswith(d + "/") for d in outs)]
            assert not stray, f"{rule} writes {stray} outside the outs of stage {stage}"


def test_recorded_study_is_complete_and_every_artifact_has_one_stage(pushed):
    origin, _, env = pushed
    stages = yaml.safe_load((origin / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["study", *FAMILIES]  # the tiny config runs the alignment study alone
    owned = [o for s in stages for o in stage_outs(s, stages)]
    assert len(owned) == len(set(owned))
    # every artifact has its stage; the jobs' logs (results/logs) are the run's, not DVC's
    written = sorted(p.name for p in (origin / "results").iterdir() if p.name != "logs")
    assert written == sorted(Path(o).name for o in owned)
    lock = yaml.safe_load((origin / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(stages)
    # the parameters come from the resolved config, whichever file set them
    tiny = yaml.safe_load(TINY.read_text())
    params = {stage: lock[stage]["params"]["results/study.yaml"] for stage in ("data", "correlation")}
    assert params["correlation"]["config"]["correlation"]["bootstrap"] == tiny["correlation"]["bootstrap"]
    assert params["correlation"]["config"]["correlation"]["confidence"] == 0.95  # a schema default
    assert params["data"]["config.seed"] == tiny["seed"]
    assert sorted(params["data"]["plan.datasets"]) == sorted(tiny["datasets"])


# ------------------------------------------------------------------ round trip


def test_pull_into_a_fresh_clone_is_byte_identical(pushed, pulled):
    origin, _, env = pushed
    artifacts = {k: v for k, v in file_hashes(origin / "results").items() if not k.startswith("logs/")}
    assert file_hashes(pulled / "results") == artifacts  # logs stay with the run that wrote them
    assert "up to date" in dvc(pulled, env, "status").stdout


def _set_mtimes_upstream_newest(results: Path) -> None:
    """Timestamps DVC could have left, at their worst: every upstream artifact newer
    than what was computed from it (all of them newer than the checkout's code)."""
    order = ["correlation", "summary.json", "summary.md", "study.yaml", "plots", "losses",
             "alignment", "checkpoints", "task2vec", "probe", "tokens", "tokenizer", "data"]
    base = time.time() + 60
    for rank, name in enumerate(order):
        path = results / name
        for f in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
            os.utime(f, (base + rank, base + rank))


def test_snakemake_takes_pulled_artifacts_as_given(pulled, pushed):
    env = pushed[2]
    results = pulled / "results"
    _set_mtimes_upstream_newest(results)
    data = results / "data" / "py_docstrings" / "train.jsonl"
    loss = next((results / "losses").rglob("*.json"))
    assert data.stat().st_mtime > loss.stat().st_mtime > (pulled / "Snakefile").stat().st_mtime
    proc = snakemake(pulled, env, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]

    # A script edited after the pull: its rule reruns, and so does everything after it.
    script = pulled / "workflow" / "scripts" / "alignment" / "correlate.py"
    checked_out, original = script.stat(), script.read_text()
    script.write_text(original + "# edited after the pull\n")
    os.utime(script, (time.time() + 600, time.time() + 600))
    # (measure_comparison: the measures' predictive power, read from the points)
    assert scheduled_rules(snakemake(pulled, env, "-n")) == {"correlate", "summary", "measure_comparison", "all"}

    # A family missing an artifact is recomputed where needed, with all that follows.
    loss.unlink()
    rules = scheduled_rules(snakemake(pulled, env, "-n"))
    assert rules == {"evaluate", "correlate", "summary", "measure_comparison", "all"}, rules
    dvc(pulled, env, "checkout")
    script.write_text(original)
    os.utime(script, ns=(checked_out.st_atime_ns, checked_out.st_mtime_ns))


def test_metrics_and_plots(pulled, pushed, tmp_path):
    env = pushed[2]
    metrics = json.loads(dvc(pulled, env, "metrics", "show", "--json").stdout)
    summary = metrics[""]["data"]["results/summary.json"]["data"]
    for setting in ("finetune", "pretrain"):
        stats = json.loads((pulled / "results" / "correlation" / setting / "stats.json").read_text())
        assert summary["correlation"][setting]["pearson_r"] == stats["pearson_r"]
        assert summary["correlation"][setting]["spearman_rho"] == stats["spearman_rho"]
    shown = json.loads(dvc(pulled, env, "plots", "show", "--json", "-o", str(tmp_path)).stdout)
    assert not shown.get("errors")
    plots = shown["data"]
    for setting in ("finetune", "pretrain"):
        [scatter] = plots[f"alignment_vs_loss_{setting}"]
        assert scatter["type"] == "vega"
        values = scatter["content"]["data"]["values"]
        points = pd.read_csv(pulled / "results" / "correlation" / setting / "points.csv")
        assert [(float(v["alignment"]), float(v["cross_entropy"])) for v in values] == list(
            zip(points["alignment"], points["cross_entropy"], strict=True))
        for image in (f"results/correlation/{setting}/scatter.png", f"results/plots/loss_curves_{setting}.png"):
            assert [p["type"] for p in plots[image]] == ["image"]


def test_partial_pull_recorrelates_without_checkpoints(pushed, tmp_path):
    origin, _, env = pushed
    dest = clone(pushed, tmp_path / "clone")
    dvc(dest, env, "pull", "alignment", "evaluation")
    assert sorted(p.name for p in (dest / "results").iterdir()) == ["alignment", "baselines", "losses"]

    tiny = dest / TINY.relative_to(REPO)
    config = yaml.safe_load(tiny.read_text())
    assert config["correlation"]["bootstrap"] != 40
    config["correlation"]["bootstrap"] = 40
    tiny.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = dvc(dest, env, "repro", "--single-item", "study", "correlation")
    ran = re.findall(r"Running stage '(\w+)'", proc.stdout)
    assert ran == ["study", "correlation"], proc.stdout[-3000:]

    results = dest / "results"
    stats = json.loads((results / "correlation" / "finetune" / "stats.json").read_text())
    assert stats["bootstrap"] == 40
    for setting in ("finetune", "pretrain"):
        rel = Path("results/correlation") / setting / "points.csv"
        assert (dest / rel).read_bytes() == (origin / rel).read_bytes()
    assert not (results / "checkpoints").exists() and not (results / "tokens").exists()
    for model in (origin / "results" / "checkpoints").rglob("model.safetensors"):
        assert not remote_object(dest / ".dvc" / "cache", model).exists(), "a checkpoint was downloaded"
    assert "Nothing to be done" in snakemake(
        dest, env, "-n", "dvc_correlation", "--allowed-rules", *_allowed_rules("correlation")).stdout

    # What Snakemake wrote in this clone keeps its triggers: an edited table reruns its reader.
    stats_file = results / "correlation" / "pretrain" / "stats.json"
    stats_file.write_text(stats_file.read_text() + "\n")
    rules = scheduled_rules(snakemake(dest, env, "-n", "dvc_correlation",
                                      "--allowed-rules", *_allowed_rules("correlation")))
    assert rules == {"summary", "dvc_correlation"}, rules


# ------------------------------------------------------------------ a damaged remote


def test_corrupted_remote_object_is_refused(pushed, tmp_path):
    origin, remote, env = pushed
    bad = tmp_path / "remote"
    shutil.copytree(remote, bad)
    loss = next((origin / "results" / "losses").rglob("*.json"))
    obj = remote_object(bad, loss)
    obj.chmod(0o644)
    obj.write_text('{"cross_entropy": 0.0}\n')
    dest = clone(pushed, tmp_path / "clone", remote=bad)
    proc = dvc(dest, env, "pull", check=False)
    assert proc.returncode != 0
    assert "results/losses" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert not (dest / "results" / "losses").exists(), "a half-pulled family was checked out"
    assert (dest / "results" / "alignment" / "alignment.csv").exists()
    assert "up to date" not in dvc(dest, env, "status").stdout
    # Snakemake does not take the family as present either: asked for it, it recomputes
    # the losses, from the checkpoints that did arrive.
    rules = scheduled_rules(snakemake(dest, env, "-n", "dvc_evaluation"))
    assert rules == {"evaluate", "dvc_evaluation"}, rules


def test_missing_remote_object_fails_the_pull(pushed, tmp_path):
    origin, remote, env = pushed
    bad = tmp_path / "remote"
    shutil.copytree(remote, bad)
    model = next((origin / "results" / "checkpoints").rglob("model.safetensors"))
    remote_object(bad, model).unlink()
    dest = clone(pushed, tmp_path / "clone", remote=bad)
    proc = dvc(dest, env, "pull", check=False)
    assert proc.returncode != 0
    assert "failed to download" in proc.stderr or "failed to download" in proc.stdout
    assert not (dest / "results" / "checkpoints").exists()
    missing = dvc(dest, env, "status", "--cloud", check=False).stdout
    assert str(model.relative_to(origin)) in missing

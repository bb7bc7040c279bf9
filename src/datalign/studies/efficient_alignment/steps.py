"""The study's workflow steps: embed, select, align and evaluate, fit, summarise.

Each step is a plain function of paths and config values (the workflow
scripts are thin adapters around them). Heavy libraries are imported inside
the steps that need them.

Runs: one job aligns every (method, seed) subset of one budget. The run of
(method, budget, seed) trains a fresh copy of the base with training seed
``seed`` on its subset, rows in their stored order, so two methods that keep
the same rows at a budget (every method at 100 %) give the same run: it is
trained once and its result shared. Each run is evaluated on the held-out
test pairs right after training (implicit reward against the base as the
reference) and its checkpoint discarded. With the judge on
(``evaluation.judge``), the job also writes the greedy completions of the
first held-out prompts by the base and by every run; the judge job
(:func:`judge_step`) scores them against the reference completions, so
changing the reward model rescores without retraining.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import ConfigError, DataError, DatalignError
from datalign.core.io import Timer, read_json, write_json

log = logging.getLogger(__name__)

METRICS = ("preference_accuracy", "reward_margin", "chosen_nll_per_token")
#: The judged metric (a reward model's win rate against the reference completions), when the judge is on.
JUDGED = "win_rate"


#: Below this R² the free fit's shape (and so its plateau and x_95) is not supported by the points.
SUPPORTED_R2 = 0.5


def _fit_reading(free: dict[str, Any]) -> str:
    """The fit's status, qualified when the points cannot test the curve or it explains too little."""
    if not free.get("shape_tested", True):
        return (f"not tested: {free['n_x']} budgets (x values) fix the 3-parameter curve, which passes "
                f"through every mean; add budgets to test a plateau ({free['status']})")
    if free.get("r2") is not None and free["r2"] < SUPPORTED_R2:
        return f"not supported (R² {free['r2']:.2f} < {SUPPORTED_R2}): {free['status']}"
    return free["status"]


def _rows_text(rows: Sequence[Any]) -> list[str]:
    return [r.prompt + r.completion for r in rows]


def _load_lm(model_dir: str, dtype: str | None = None):
    from datalign.studies.efficient_alignment.embedders import load_causal_lm

    return load_causal_lm(model_dir, dtype=dtype)


def embed_step(
    data_dir: str | Path, embeddings_out: str | Path, quality_out: str | Path,
    embedding: Mapping[str, Any], embedding_model: str | None, quality: Mapping[str, Any],
    quality_model: str,
) -> None:
    """Embed every training row (prompt + completion) and score its completion NLL; cache both as .npz."""
    from datalign.data.preference import read_preference_split
    from datalign.studies.efficient_alignment.embedders import (
        last_token_embeddings,
        save_embeddings,
        sentence_embeddings,
    )
    from datalign.studies.efficient_alignment.selection.quality import completion_nll

    rows = read_preference_split(data_dir, "train")
    ids = np.arange(len(rows))
    texts = _rows_text(rows)
    cache: dict[str, Any] = {}

    def lm(name: str):
        if name not in cache:
            cache[name] = _load_lm(name, embedding.get("dtype"))
        return cache[name]

    with Timer() as t_emb:
        if embedding["kind"] == "last_token":
            model, tok = lm(str(embedding_model))
            vecs = last_token_embeddings(texts, model, tok, batch_size=embedding["batch_size"],
                                         max_length=embedding["max_length"], layer=embedding["layer"],
                                         progress=False)
        else:
            vecs = sentence_embeddings(texts, model=embedding_model, batch_size=embedding["batch_size"],
                                       progress=False)
    meta = {"embedder": embedding["kind"], "model": embedding_model, "rows": len(rows),
            "seconds": round(t_emb.seconds, 3), "options": dict(embedding)}
    save_embeddings(embeddings_out, vecs, ids, meta)
    with Timer() as t_nll:
        model, tok = lm(quality_model)
        nll = completion_nll([r.prompt for r in rows], [r.completion for r in rows], model, tok,
                             batch_size=quality["batch_size"], progress=False)
    save_embeddings(quality_out, nll.mean_nll[:, None], ids,
                    {"scorer": "completion_nll", "model": quality_model, "rows": len(rows),
                     "seconds": round(t_nll.seconds, 3), "truncated": int(nll.truncated.sum())})
    log.info("embedded %d rows (%d-d) in %.1fs; NLL in %.1fs", len(rows), vecs.shape[1], t_emb.seconds,
             t_nll.seconds)


def select_step(
    pref: str, budget: str, embeddings_path: str | Path, quality_path: str | Path,
    methods: Mapping[str, Mapping[str, Any]], seeds: Mapping[str, int], objective: str,
    outputs: Mapping[tuple[str, str], str],
) -> None:
    """Select ``budget`` percent of the rows by every method and seed; one .npz per (method, seed).

    ``seeds`` maps a listed seed to the seed the method uses; ``outputs`` maps
    (method, listed seed) to its file. A budget that rounds to no row, or (KTO)
    to a single row, is a one-line ConfigError naming the dataset.
    """
    from datalign.studies.efficient_alignment.selection import method_needs, resolve_budget, select
    from datalign.studies.efficient_alignment.selection.artifacts import save_selection

    # Read with numpy alone: the embedders module imports transformers (seconds per job).
    with np.load(embeddings_path, allow_pickle=False) as f:
        vectors, row_ids = f["embeddings"], f["row_ids"]
    with np.load(quality_path, allow_pickle=False) as f:
        if not np.array_equal(f["row_ids"], row_ids):
            raise DataError(f"{quality_path}: its rows are not those of {embeddings_path}")
        nll = f["embeddings"][:, 0]
    n = vectors.shape[0]
    fraction = float(budget) / 100.0
    try:
        k = resolve_budget(fraction, n, "any")
    except ConfigError:
        raise ConfigError(f"dataset {pref}: budget {budget}% of its {n} training rows rounds to 0 rows; "
                          "raise the budget or the dataset's max_rows") from None
    if objective == "kto" and k < 2:
        raise ConfigError(f"dataset {pref}: budget {budget}% of its {n} training rows keeps {k} row; "
                          "KTO needs at least 2 (a step's KL estimate pairs rows)")
    for method, options in methods.items():
        data = nll if method_needs(method) == "scores" else vectors
        for listed, seed in seeds.items():
            try:
                result = select(method, data, fraction, seed, **dict(options or {}))
            except DatalignError as err:
                raise type(err)(f"dataset {pref}, budget {budget}%: {err}") from None
            result.info["listed_seed"] = int(listed)
            save_selection(outputs[(method, str(listed))], result, row_ids)


def _subset_rows(rows: Sequence[Any], indices: np.ndarray, objective: str) -> list[dict[str, Any]]:
    """The selected rows in stored order, in the objective's form (DPO: the pairs both rows of which were kept)."""
    from datalign.data.preference import kto_to_pairs

    chosen = [rows[i] for i in sorted(int(i) for i in indices)]
    if objective == "kto":
        return [{"prompt": r.prompt, "completion": r.completion, "label": r.desirable} for r in chosen]
    pairs, _ = kto_to_pairs(chosen, "zip")
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def _subset_key(indices: np.ndarray) -> str:
    return hashlib.sha256(np.sort(np.asarray(indices, dtype=np.int64)).tobytes()).hexdigest()[:16]



class CachedEvaluation:
    """:func:`~.evaluation.evaluate_preferences` with the reference's log-probabilities computed once.

    Every run of a job is scored against the same reference (the base) on the
    same test pairs, so pi_ref(y|x) of each completion is computed once, then
    each run costs two passes (chosen, rejected) instead of four. The measures
    and their keys are those of ``evaluate_preferences`` (tests/test_preference_eval.py
    checks that function; test_workflow_efficient_alignment checks the base scores 0.5).
    """

    def __init__(self, reference, tokenizer, pairs: Sequence[Mapping[str, Any]], *, beta: float,
                 max_length: int | None, batch_size: int, use_chat_template: bool, confidence: float,
                 n_boot: int) -> None:
        from datalign.studies.efficient_alignment.evaluation import check_pairs

        check_pairs(pairs)
        self.tokenizer, self.pairs, self.beta = tokenizer, pairs, float(beta)
        self.kwargs = {"max_length": max_length, "batch_size": batch_size, "use_chat_template": use_chat_template}
        self.confidence, self.n_boot = confidence, n_boot
        self.reference = {key: self._logps(reference, key) for key in ("chosen", "rejected")}

    def _logps(self, model, key: str) -> tuple[np.ndarray, np.ndarray]:
        from datalign.studies.efficient_alignment.evaluation import completion_logps

        return completion_logps(model, self.tokenizer, [p["prompt"] for p in self.pairs],
                                [p[key] for p in self.pairs], **self.kwargs)

    def __call__(self, policy, seed: int = 0) -> dict[str, Any]:
        from datalign.studies.efficient_alignment.evaluation import (
            bootstrap_mean_ci,
            preference_accuracy,
        )

        pi = {key: self._logps(policy, key) for key in ("chosen", "rejected")}
        rewards = {key: self.beta * (pi[key][0] - self.reference[key][0]) for key in pi}
        keep = (pi["chosen"][1] > 0) & (pi["rejected"][1] > 0)
        if not keep.any():
            raise DataError(f"all {len(self.pairs)} pairs have a prompt that fills max_length: nothing to evaluate")
        r_c, r_r = rewards["chosen"][keep], rewards["rejected"][keep]
        margins = r_c - r_r
        low, high = bootstrap_mean_ci(margins, confidence=self.confidence, n_boot=self.n_boot, seed=seed)
        tokens = int(pi["chosen"][1][keep].sum())
        return {
            "pairs": int(keep.sum()), "pairs_dropped": int((~keep).sum()), "beta": self.beta,
            "preference_accuracy": preference_accuracy(r_c, r_r), "reward_margin": float(margins.mean()),
            "reward_margin_ci": [low, high], "confidence": self.confidence,
            "reward_chosen": float(r_c.mean()), "reward_rejected": float(r_r.mean()),
            "chosen_nll_per_token": float(-pi["chosen"][0][keep].sum() / tokens), "chosen_tokens": tokens,
        }


def align_step(
    pref: str, budget: str, data_dir: str | Path, selections: Mapping[tuple[str, str], str],
    policy_dir: str, objective: str, training: Mapping[str, Any], evaluation: Mapping[str, Any],
    seeds: Mapping[str, int], out: str | Path, generation: Mapping[str, Any] | None = None,
    completions_out: str | Path | None = None,
) -> dict[str, Any]:
    """Align the policy on every (method, seed) subset of one budget; evaluate each on the test pairs.

    ``generation`` (``{max_new_tokens, max_prompts}``, the judge's generation
    options; None: no judge): the base and every trained run complete the first
    ``max_prompts`` test prompts greedily, written to ``completions_out`` as
    ``{"prompts": n, "max_new_tokens", "base": [...], "runs": {"<method>_seed<s>": [...]}}``.

    With ``training.lora`` each run trains LoRA adapters on the loaded base in
    place (removed after the run) and is evaluated as the base with its
    adapter (:func:`~datalign.training.preference.trained_policy`): the
    reference log-probs, computed once from the base before any run, are
    those of the adapter-disabled policy, and no copy of the model is made.
    """
    from datalign.data.preference import read_preference_split
    from datalign.studies.efficient_alignment.selection.artifacts import load_selection
    from datalign.training.preference import (
        PreferenceOptions,
        PreferenceRun,
        prepare_tokenizer,
        resolve_device,
        train_many,
        trained_policy,
    )

    rows = read_preference_split(data_dir, "train")
    pairs = read_preference_split(data_dir, "test", form="pairs")
    if evaluation.get("max_pairs"):
        pairs = pairs[: evaluation["max_pairs"]]
    test = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    opts = PreferenceOptions.from_dict(training, where="efficient_alignment.training")
    base, tok = _load_lm(policy_dir, opts.dtype)
    if opts.lora is not None:  # a target the policy lacks fails here, before hours of evaluation and training
        opts.lora.peft_config(base, where="efficient_alignment.training.lora")
    # Evaluate where the runs train: the reference log-probs, the base's completions and every run's
    # on one device (a LoRA run trains the base itself, which its trainer moves there anyway).
    use_cpu, _ = resolve_device(opts.device)
    device = "cpu" if use_cpu else "cuda"
    base.to(device)
    tok = prepare_tokenizer(tok)
    with Timer() as t_base:
        evaluate = CachedEvaluation(
            base, tok, test, beta=float(training.get("beta", 0.1)), max_length=training.get("max_length"),
            batch_size=evaluation["batch_size"], use_chat_template=training.get("use_chat_template", True),
            confidence=evaluation["confidence"], n_boot=evaluation["bootstrap"])
        base_metrics = evaluate(base, seed=0)
    use_chat = training.get("use_chat_template", True)
    prompts = None
    completions: dict[str, Any] = {}
    if generation:
        if completions_out is None:
            raise ConfigError("align_step: the judge is on but no completions file is named")
        prompts = [p["prompt"] for p in test][: generation.get("max_prompts") or None]

        def complete(model) -> list[str]:
            from datalign.studies.efficient_alignment.evaluation import generate_completions

            return generate_completions(model, tok, prompts, max_new_tokens=int(generation["max_new_tokens"]),
                                        batch_size=evaluation["batch_size"], use_chat_template=use_chat)

        completions = {"prompts": len(prompts), "max_new_tokens": int(generation["max_new_tokens"]),
                       "base": complete(base), "runs": {}}
    record: dict[str, Any] = {
        "dataset": pref, "budget": budget, "percent": float(budget), "objective": objective,
        "train_rows": len(rows), "test_pairs": len(test), "policy": policy_dir,
        "base": {**base_metrics, "seconds": round(t_base.seconds, 3)}, "runs": [],
    }
    done: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="datalign-ea-") as work:
        for (method, listed), path in selections.items():
            result, _ = load_selection(path)
            seed = int(seeds[str(listed)])
            key = (_subset_key(result.indices), seed)
            entry: dict[str, Any] = {"method": method, "seed": int(listed), "run_seed": seed,
                                     "k": int(result.indices.size), "subset": key[0]}
            if key in done:
                shared = done[key]
                entry.update(shared_with=shared["method"], train=shared["train"], metrics=shared["metrics"],
                             rows_used=shared["rows_used"], desirable=shared["desirable"],
                             undesirable=shared["undesirable"])
                record["runs"].append(entry)
                if prompts is not None:
                    completions["runs"][f"{method}_seed{listed}"] = completions["runs"][
                        f"{shared['method']}_seed{listed}"]
                continue
            subset = _subset_rows(rows, result.indices, objective)
            if not subset:
                raise DataError(f"dataset {pref}, budget {budget}%, {method} seed {listed}: no "
                                f"{objective.upper()} row left in the {entry['k']} selected rows")
            run_dir = Path(work) / f"{method}_seed{listed}"
            name = f"{pref}/{budget}%/{method}/seed{listed}"
            with Timer() as t_run:
                train_log = train_many(base, [PreferenceRun(subset, objective, run_dir, dict(training), seed,
                                                            name)], tokenizer=tok, progress=False)[0]
                with trained_policy(run_dir, base=base, dtype=opts.dtype) as policy:
                    policy.to(device)
                    metrics = evaluate(policy, seed=seed)
                    if prompts is not None:
                        completions["runs"][f"{method}_seed{listed}"] = complete(policy)
                    del policy
                shutil.rmtree(run_dir, ignore_errors=True)
            entry.update(
                shared_with=None, rows_used=train_log["rows_used"],
                desirable=sum(1 for r in subset if r.get("label") is True),
                undesirable=sum(1 for r in subset if r.get("label") is False),
                train={**train_log["summary"], "total_steps": train_log["total_steps"],
                       "loss_curve": [s["loss"] for s in train_log["steps"]], "seconds": round(t_run.seconds, 3)},
                metrics=metrics,
            )
            done[key] = entry
            record["runs"].append(entry)
            log.info("%s: accuracy %.3f, margin %.4f, %d steps, %.1fs", name, metrics["preference_accuracy"],
                     metrics["reward_margin"], train_log["total_steps"], t_run.seconds)
    record["trained_runs"] = len(done)
    if prompts is not None:
        write_json(completions_out, completions)
    write_json(out, record)
    return record


# --------------------------------------------------------------------------- judge


def judge_step(
    pref: str, budget: str, data_dir: str | Path, runs_path: str | Path, completions_path: str | Path,
    judge: Mapping[str, Any], judge_model: str, evaluation: Mapping[str, Any], out: str | Path,
) -> dict[str, Any]:
    """Score the completions of one budget's runs (and the base) against the reference completions.

    The reward model ``judge_model`` (:func:`~.evaluation.load_reward_model`)
    scores each run's greedy completion of a held-out prompt and the pair's
    ``chosen`` completion (the reference); win 1, tie 0.5 (equal scores), loss 0.
    Per run: ``win_rate`` with a percentile-bootstrap CI over prompts (seeded
    by the run's training seed); per method: the outcomes of all its seeds
    pooled (mean and bootstrap CI over the pooled prompts x seeds). Writes
    ``{"base": {...}, "runs": [...], "methods": {...}}``.
    """
    from datalign.data.preference import read_preference_split
    from datalign.studies.efficient_alignment.evaluation import (
        bootstrap_mean_ci,
        load_reward_model,
        pairwise_outcomes,
        reward_scores,
    )

    record_runs = read_json(runs_path)
    done = read_json(completions_path)
    pairs = read_preference_split(data_dir, "test", form="pairs")
    if evaluation.get("max_pairs"):
        pairs = pairs[: evaluation["max_pairs"]]
    n = int(done["prompts"])
    if n > len(pairs):
        raise DataError(f"{completions_path}: {n} completions but {len(pairs)} held-out pairs")
    prompts = [p.prompt for p in pairs[:n]]
    references = [p.chosen for p in pairs[:n]]
    conf, n_boot = float(evaluation["confidence"]), int(evaluation["bootstrap"])
    model, tok = load_reward_model(judge_model)
    kwargs = {"batch_size": int(judge["batch_size"]), "max_length": int(judge["max_length"])}
    with Timer() as t_judge:
        s_ref = reward_scores(model, tok, prompts, references, **kwargs)

        def judged(texts: Sequence[str], seed: int) -> tuple[dict[str, Any], np.ndarray]:
            if len(texts) != n:
                raise DataError(f"{completions_path}: {len(texts)} completions of a run, {n} prompts")
            s_pol = reward_scores(model, tok, prompts, list(texts), **kwargs)
            outcomes = pairwise_outcomes(s_pol, s_ref)
            low, high = bootstrap_mean_ci(outcomes, confidence=conf, n_boot=n_boot, seed=seed)
            return {"n": n, JUDGED: float(outcomes.mean()), f"{JUDGED}_ci": [low, high],
                    "wins": int((outcomes == 1.0).sum()), "ties": int((outcomes == 0.5).sum()),
                    "losses": int((outcomes == 0.0).sum()), "policy_score": float(s_pol.mean()),
                    "reference_score": float(s_ref.mean())}, outcomes

        base, _ = judged(done["base"], 0)
        runs, pooled = [], {}
        for run in record_runs["runs"]:
            result, outcomes = judged(done["runs"][f"{run['method']}_seed{run['seed']}"], int(run["run_seed"]))
            runs.append({"method": run["method"], "seed": run["seed"], "shared_with": run["shared_with"],
                         **result})
            pooled.setdefault(run["method"], []).append(outcomes)
    methods = {}
    for method, parts in pooled.items():
        outcomes = np.concatenate(parts)
        low, high = bootstrap_mean_ci(outcomes, confidence=conf, n_boot=n_boot, seed=0)
        methods[method] = {"seeds": len(parts), "n": int(outcomes.size), JUDGED: float(outcomes.mean()),
                           f"{JUDGED}_ci": [low, high]}
    result = {"dataset": pref, "budget": budget, "percent": float(budget), "judge": judge_model,
              "reference": "chosen", "ties": "count half (equal reward-model scores)", "confidence": conf,
              "max_new_tokens": done["max_new_tokens"], "base": base, "runs": runs, "methods": methods,
              "seconds": round(t_judge.seconds, 3)}
    write_json(out, result)
    log.info("%s %s%%: judged %d runs on %d prompts (base win rate %.3f) in %.1fs", pref, budget, len(runs), n,
             base[JUDGED], t_judge.seconds)
    return result


# --------------------------------------------------------------------------- scaling


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float | None, float | None]:
    from scipy import stats as sps

    mean = float(np.mean(values))
    if values.size < 2:
        return mean, None, None
    half = float(sps.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half


def collect_points(
    run_files: Sequence[str | Path], metric: str, judged_files: Sequence[str | Path] = (),
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One point per (method, budget, seed) run plus the base (x = 0); the base's metrics.

    ``judged_files`` (one per run file, in the same order; empty: no judge)
    add each run's judged ``win_rate``. ``metric`` win_rate without them is a
    :class:`ConfigError`.
    """
    if metric == JUDGED and not judged_files:
        raise ConfigError("scaling.metric win_rate needs the judge (efficient_alignment.evaluation.judge)")
    if judged_files and len(judged_files) != len(run_files):
        raise DataError(f"scaling: {len(run_files)} run files but {len(judged_files)} judged files")
    points: list[dict[str, Any]] = []
    base = None
    for i, path in enumerate(run_files):
        record = read_json(path)
        judged = read_json(judged_files[i]) if judged_files else None
        wins = {(r["method"], r["seed"]): r[JUDGED] for r in judged["runs"]} if judged else {}
        if base is None:
            base = dict(record["base"])
            if judged:
                base[JUDGED] = judged["base"][JUDGED]
        for run in record["runs"]:
            point = {"method": run["method"], "percent": record["percent"], "seed": run["seed"],
                     "k": run["k"], "shared_with": run["shared_with"],
                     **{m: run["metrics"][m] for m in METRICS}}
            if judged:
                point[JUDGED] = wins[(run["method"], run["seed"])]
            points.append(point)
    if base is None:
        raise DataError("scaling: no runs")
    return points, base


def scaling_step(
    pref: str, run_files: Sequence[str | Path], methods: Sequence[str], scaling: Mapping[str, Any], seed: int,
    fits_out: str | Path, points_out: str | Path, table_out: str | Path, plot_out: str | Path,
    judged_files: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Fit the plateau per method (free and paper readings), write points, the budget table and the plot.

    ``judged_files`` (one per run file; empty: no judge) add the judged win
    rate to every point, so ``scaling.metric`` may be ``win_rate``.
    """
    import pandas as pd

    from datalign.plotting.charts import save_figure
    from datalign.studies.efficient_alignment.plots import score_vs_fraction_figure
    from datalign.studies.efficient_alignment.scaling import scaling_report

    metric, conf = scaling["metric"], scaling["confidence"]
    points, base = collect_points(run_files, metric, judged_files)
    metrics = [*METRICS, JUDGED] if judged_files else list(METRICS)
    frame = pd.DataFrame(points)
    seeds = sorted(frame["seed"].unique())
    base_rows = [{"method": m, "percent": 0.0, "seed": s, "k": 0, "shared_with": "base",
                  **{k: base[k] for k in metrics}} for m in methods for s in seeds]
    full = frame[frame["percent"] == 100.0]
    frame_all = pd.concat([pd.DataFrame(base_rows), frame], ignore_index=True)
    fits: dict[str, Any] = {"dataset": pref, "metric": metric, "base": {k: base[k] for k in metrics},
                            "methods": {}}
    plot_points, plot_fits = {}, {}
    for method in methods:
        sub = frame_all[frame_all["method"] == method]
        x, y = sub["percent"].to_numpy(float), sub[metric].to_numpy(float)
        plot_points[method] = (x, y)
        try:
            report = scaling_report(x, y, n_boot=scaling["bootstrap"], confidence=conf, seed=seed)
            plot_fits[method] = report["free"]
        except DatalignError as err:
            report = {"error": str(err)}
        fits["methods"][method] = report
    # The table: each method's mean (t CI over seeds) at each budget, against the full data.
    full_mean = float(full[metric].mean()) if len(full) else None
    table = []
    for (method, percent), grp in frame.groupby(["method", "percent"], sort=True):
        mean, low, high = _t_interval(grp[metric].to_numpy(float), conf)
        table.append({"method": method, "percent": percent, "runs": len(grp), "k": int(grp["k"].iloc[0]),
                      "mean": mean, "ci_low": low, "ci_high": high,
                      "full_data_mean": full_mean,
                      "vs_full": None if full_mean is None else mean - full_mean})
    table_frame = pd.DataFrame(table)
    table_frame["method"] = pd.Categorical(table_frame["method"], categories=list(methods), ordered=True)
    table_frame = table_frame.sort_values(["percent", "method"])
    from datalign.core.io import atomic_path

    with atomic_path(points_out) as tmp:
        frame_all.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(table_out) as tmp:
        table_frame.to_csv(tmp, index=False, float_format="%.6g")
    fits["full_data_mean"] = full_mean
    figure = score_vs_fraction_figure(plot_points, plot_fits,
                                      title=f"{pref}: {metric.replace('_', ' ')} vs data (x = 0: the base)",
                                      ylabel=metric.replace("_", " "), log_x=True, confidence=conf)
    fits["plot"] = {"legend": [t.get_text() for t in figure.axes[0].get_legend().get_texts()]}
    write_json(fits_out, fits)
    save_figure(figure, plot_out)
    return fits


# --------------------------------------------------------------------------- summary


def _paired(table: Any, a: str, b: str, percent: float, conf: float, points: Any, metric: str) -> dict[str, Any] | None:
    """Mean difference a - b over seeds at one budget (seeds share training seeds: paired), with a t CI."""
    pa = points[(points["method"] == a) & (points["percent"] == percent)].set_index("seed")[metric]
    pb = points[(points["method"] == b) & (points["percent"] == percent)].set_index("seed")[metric]
    common = pa.index.intersection(pb.index)
    if len(common) == 0:
        return None
    diff = (pa.loc[common] - pb.loc[common]).to_numpy(float)
    mean, low, high = _t_interval(diff, conf)
    if low is None:
        verdict = "one seed: no CI"
    elif high - low == 0:
        # identical runs across seeds (deterministic subsets and a one-batch run): no spread to judge by
        verdict = "no seed variance: not a test"
    elif low > 0:
        verdict = f"{a} higher"
    elif high < 0:
        verdict = f"{b} higher"
    else:
        verdict = "no difference resolved"
    return {"percent": percent, "a": a, "b": b, "difference": mean, "ci_low": low, "ci_high": high,
            "seeds": len(common), "verdict": verdict}


def _judged_summary(files: Sequence[str | Path]) -> dict[str, Any]:
    """The base's and every (budget, method)'s judged win rate (seeds pooled) from one dataset's judged files."""
    records = sorted((read_json(f) for f in files), key=lambda r: r["percent"])
    first = records[0]
    rows = [{"percent": r["percent"], "method": method, **m} for r in records for method, m in r["methods"].items()]
    return {"judge": first["judge"], "reference": first["reference"], "ties": first["ties"],
            "base": {k: first["base"][k] for k in ("n", JUDGED, f"{JUDGED}_ci", "wins", "ties", "losses")},
            "budgets": rows}


def _judged_markdown(judged: dict[str, Any], conf: float) -> list[str]:
    base = judged["base"]
    lines = [f"Judged win rate against the reference (chosen) completions, judge `{judged['judge']}` "
             f"(greedy completions of {base['n']} held-out prompts; ties count half; seeds pooled, "
             f"bootstrap {round(100 * conf)}% CI over prompts x seeds). Base: {base[JUDGED]:.3f} "
             f"({base[f'{JUDGED}_ci'][0]:.3f} to {base[f'{JUDGED}_ci'][1]:.3f}).", "",
             "| budget | method | win rate (CI) | seeds |", "|---|---|---|---|"]
    for row in judged["budgets"]:
        low, high = row[f"{JUDGED}_ci"]
        lines.append(f"| {row['percent']:g} % | {row['method']} | {row[JUDGED]:.3f} ({low:.3f} to {high:.3f}) | "
                     f"{row['seeds']} |")
    return [*lines, ""]


def summary_step(
    datasets: Sequence[str], fits_files: Sequence[str | Path], points_files: Sequence[str | Path],
    section: Mapping[str, Any], json_out: str | Path, md_out: str | Path,
    judged_files: Mapping[str, Sequence[str | Path]] | None = None,
) -> dict[str, Any]:
    """The headline numbers: plateau (R^2) per method, ISA against random and density at small budgets.

    ``judged_files`` (dataset -> its judged files, one per budget; None: no
    judge) add each dataset's judged win rates: the base's, and per (budget,
    method) the outcomes of all seeds pooled, with their bootstrap CIs.
    """
    import pandas as pd

    scaling = section["scaling"]
    metric, conf, small = scaling["metric"], scaling["confidence"], float(scaling["small_budget"])
    lower_better = metric == "chosen_nll_per_token"
    summary: dict[str, Any] = {"metric": metric, "confidence": conf, "small_budget": small,
                               "objective": section["objective"], "policy": section["policy"],
                               "embedding": section["embedding"]["kind"], "datasets": {}}
    md = [f"# Data-efficient alignment: {section['objective'].upper()} on selected subsets", "",
          f"Score: {metric} on held-out test pairs ({'lower' if lower_better else 'higher'} is better); "
          f"policy `{section['policy']}`; embedder `{section['embedding']['kind']}`; "
          f"{len(section['seeds'])} seeds; CIs at {round(100 * conf)}%.", ""]
    for name, fits_path, points_path in zip(datasets, fits_files, points_files, strict=True):
        fits = read_json(fits_path)
        points = pd.read_csv(points_path)
        points = points[points["percent"] > 0]
        entry: dict[str, Any] = {"base": fits["base"], "full_data_mean": fits["full_data_mean"], "plateau": {},
                                 "comparisons": []}
        md += [f"## {name}", "", f"Base (x = 0): {metric} {fits['base'][metric]:.4g}; full data (100 %): "
               + (f"{fits['full_data_mean']:.4g}" if fits["full_data_mean"] is not None else "not run"), "",
               "| method | R² (free fit) | r (CI) | a | b (CI) | x_95 | reading |", "|---|---|---|---|---|---|---|"]
        for method, rep in fits["methods"].items():
            if "error" in rep:
                entry["plateau"][method] = {"error": rep["error"]}
                md.append(f"| {method} | fit failed: {rep['error']} | | | | | |")
                continue
            free, paper = rep["free"], rep["paper"]
            ci = free.get("ci", {})

            def _ci(key: str, ci: dict = ci) -> str:
                low, high = (ci.get(key) or [None, None])
                return "" if low is None or high is None else f" ({low:.3g} to {high:.3g})"

            entry["plateau"][method] = {
                "r2": free["r2"], "r": free["r"], "a": free["a"], "b": free["b"], "plateau": free["plateau"],
                "status": free["status"], "x_95": free["x_95"], "ci": ci, "paper_reading_r2": paper["r2"],
                "paper_reading_b": paper["b"], "n_x": free.get("n_x"), "shape_tested": free.get("shape_tested", True),
            }
            x95 = f"{free['x_95']:.3g} %" if free["x_95"] is not None else "none in range"
            md.append(f"| {method} | {free['r2']:.3f} (paper reading {paper['r2']:.3f}) | {free['r']:.4g}{_ci('r')} | "
                      f"{free['a']:.4g} | {free['b']:.3g}{_ci('b')} | {x95} | {_fit_reading(free)} |")
        md.append("")
        if judged_files and judged_files.get(name):
            entry[JUDGED] = _judged_summary(judged_files[name])
            md += _judged_markdown(entry[JUDGED], conf)
        budgets = sorted(p for p in points["percent"].unique() if p <= small)
        rivals = [m for m in ("random", "density", "quality") if m in set(points["method"])]
        if "isa" in set(points["method"]) and rivals:
            md += [f"ISA against the baselines at budgets <= {small:g} % (paired over seeds: mean difference "
                   f"ISA - baseline, t CI):", "", "| budget | baseline | ISA - baseline (CI) | reading |",
                   "|---|---|---|---|"]
            for percent in budgets:
                for rival in rivals:
                    cmp = _paired(None, "isa", rival, percent, conf, points, metric)
                    if cmp is None:
                        continue
                    if lower_better and cmp["verdict"].endswith("higher"):
                        cmp["verdict"] = cmp["verdict"].replace("higher", "higher (worse: lower is better)")
                    entry["comparisons"].append(cmp)
                    ci_txt = "" if cmp["ci_low"] is None else f" ({cmp['ci_low']:+.3g} to {cmp['ci_high']:+.3g})"
                    md.append(f"| {percent:g} % | {rival} | {cmp['difference']:+.3g}{ci_txt} | {cmp['verdict']} |")
            md.append("")
            wins = {v: sum(1 for c in entry["comparisons"] if c["verdict"].startswith(v))
                    for v in ("isa higher", "no difference", "random higher", "density higher", "quality higher")}
            entry["comparison_counts"] = wins
        summary["datasets"][name] = entry
        untested = [m for m, p in entry["plateau"].items() if "r2" in p and not p.get("shape_tested", True)]
        r2s = {m: p["r2"] for m, p in entry["plateau"].items() if "r2" in p and m not in untested}
        plateaus = [m for m, p in entry["plateau"].items() if p.get("plateau") and m not in untested]
        if not r2s and not untested:
            reading = "no fit converged."
        elif not r2s:
            n_x = entry["plateau"][untested[0]]["n_x"]
            reading = (f"with {n_x} budgets (x values, the base's x = 0 included) the plateau curve has as many "
                       "free values as there are x values, so it passes through every budget's mean: its R² "
                       "and plateau say nothing about the shape. Add budgets between the smallest and the "
                       "largest to test whether performance plateaus.")
        elif max(r2s.values()) < SUPPORTED_R2:
            reading = (f"the free plateau fit explains only R² = {min(r2s.values()):.2f} to {max(r2s.values()):.2f} "
                       "of the variance: the scores are mostly seed noise, so neither a plateau nor any trend "
                       "with the data fraction is supported, whatever the fitted b says.")
        else:
            reading = (f"the free plateau fit explains R² = {min(r2s.values()):.2f} to {max(r2s.values()):.2f}; "
                       f"a plateau is reached inside the measured range for {', '.join(plateaus) or 'no method'}.")
        entry["reading"] = reading
        md += ["Reading: " + reading, ""]
    write_json(json_out, summary)
    from datalign.core.io import write_text

    write_text(md_out, "\n".join(md) + "\n")
    return summary

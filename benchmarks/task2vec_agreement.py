"""Does ``fast`` rank the default study's alignments as ``paper`` does, as well as ``paper`` agrees with itself?

Embeds every set the default study embeds (``datalign.studies.alignment.plan.embedding_sets``:
11 (dataset, split) sets) with its own batches (the workflow's sizes and seeds,
``task2vec.num_batches`` per set) and its probe, with ``paper`` under two seeds
and ``fast`` under the same two seeds, computes the alignment coefficient of
every pair of sets (55 pairs) from each run, and writes JSON with:

- ``noise_ceiling``: Spearman between the two ``paper`` runs (how well paper
  agrees with itself: the Monte Carlo Fisher is noisy);
- ``fast_vs_paper``: Spearman between each ``fast`` run and each ``paper`` run
  (four independent pairs; the same seed does not make the draws shared, the
  two samplers differ), their mean and minimum;
- ``fast_vs_fast``: Spearman between the two ``fast`` runs;
- ``at_ceiling``: whether the mean ``fast``-``paper`` Spearman is at least the
  ceiling (the rule the default study's ``task2vec.estimator`` follows);
- ``ceiling_gap_by_reference`` and its mean ``ceiling_gap_mean``: per ``paper``
  run, how much better (positive) or worse the ``fast`` runs agree with it than
  the other ``paper`` runs do (:func:`reference_gaps`: an outlying ``paper`` run
  moves both sides alike);
- ``exchangeability``: an exact permutation test of whether ``fast`` agrees
  with ``paper`` worse than ``paper`` agrees with itself (:func:`exchangeability_test`):
  the statistic is the mean ``fast``-``paper`` Spearman minus the ceiling, and
  its null distribution is that statistic over every relabelling of the runs
  as ``paper``/``fast`` (all runs drawn alike under the null). ``p`` is the
  share of relabellings at or below the observed gap; with 2 runs per
  estimator there are only 6 relabellings and the test cannot reject, so
  ``not_below_ceiling`` is given from 3 runs each (20 relabellings) up;
- Pearson correlations, the largest alignment difference, the 55 values per
  run and the seconds per embedding.

``--from-report FILE`` adds the exchangeability test to an earlier report (from
its stored alignment values, no embedding) and writes it to ``--out``.

``noise_ceiling`` and ``fast_vs_fast`` are means over every pair of runs when
``--seeds`` is above 2. ``--probe gpt2`` / ``gpt2_50k_tiny`` compare on the
benchmark's random probes (``task2vec_bench.py``) with the same sets' tokens;
``--num-batches``, ``--batch-size``, ``--seq-len`` and ``--sets`` size the run.

Run from the repository root once the default study's tokens and probe exist::

    .venv/bin/python benchmarks/task2vec_agreement.py --results results --threads 2 \\
        --out benchmarks/task2vec_agreement.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from datalign.lm.tokens import TokenizedSplit, sample_segment_batches  # noqa: E402
from datalign.studies import load_config  # noqa: E402
from datalign.studies.alignment import plan as study  # noqa: E402
from datalign.task2vec import Task2VecConfig, embed_batches  # noqa: E402
from datalign.task2vec.coefficients import alignment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED_STRIDE = 7919  # seed offsets 0, 7919, 15838, ...: the workflow's own seed first


def probe_and_config(args: argparse.Namespace, base: Task2VecConfig) -> tuple[torch.nn.Module, Task2VecConfig, Any]:
    """The probe to compare on, the Task2Vec config (batch sizes) it runs with, and its own tokenizer
    (None: the study's tokens are used as they are)."""
    if args.probe_dir:
        from datalign.task2vec.api import load_probe

        probe = load_probe(args.probe_dir)
        cfg = dataclasses.replace(base, batch_size=args.batch_size or 16, seq_len=args.seq_len or 16)
        model, tokenizer = probe.model.eval(), probe.tokenizer
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from task2vec_bench import build_probe  # the benchmark's probes, same weights for a seed

        model, cfg = build_probe(args.probe, args.results, torch.device("cpu"), base, on_gpu=False,
                                 seed=args.probe_seed, batch_size=args.batch_size, seq_len=args.seq_len)
        tokenizer = None
    if args.num_batches:
        cfg = dataclasses.replace(cfg, num_batches=args.num_batches)
    if args.probe == "default" and not args.probe_dir and (args.batch_size or args.seq_len):
        cfg = dataclasses.replace(cfg, batch_size=args.batch_size or cfg.batch_size, seq_len=args.seq_len or cfg.seq_len)
    if args.fast_options:
        cfg = cfg.with_options("fast", **json.loads(args.fast_options))  # checked: ConfigError if bad
    return model, cfg, tokenizer


def set_tokens(args: argparse.Namespace, es: Any, tokenizer: Any) -> TokenizedSplit:
    """A set's tokens: the study's, or its prepared texts encoded by the probe's own tokenizer."""
    if tokenizer is None:
        return TokenizedSplit.load(args.results / "tokens" / es.dataset / f"{es.split}.npz", name=es.label)
    from datalign.data.prepare import read_split
    from datalign.lm.tokenizer import tokenize_texts

    return tokenize_texts(tokenizer, read_split(args.results / "data" / es.dataset, es.split), name=es.label)


#: What a reused report must share with this run for its paper values to be comparable. Not the
#: number of seeds: run i has seed offset i * SEED_STRIDE in any report, so a report with fewer
#: seeds lends the runs it has and the others are computed.
SAME_RUN_KEYS = ("probe", "probe_seed", "probe_dir", "sets", "batches_per_set", "batch")


def reference_gaps(values: dict[str, np.ndarray], paper_runs: list[str], fast_runs: list[str]) -> dict[str, float]:
    """Per ``paper`` run j: mean Spearman of the ``fast`` runs against j minus that of the other ``paper`` runs.

    Both sides are measured against the same reference run, so an outlying
    ``paper`` run lowers both alike; the mean over j is ``fast``'s distance to
    the noise ceiling with that shared noise removed (0: at the ceiling).
    """
    def rho(a: str, b: str) -> float:
        return float(stats.spearmanr(values[a], values[b]).statistic)

    return {j: float(np.mean([rho(f, j) for f in fast_runs]) - np.mean([rho(k, j) for k in paper_runs if k != j]))
            for j in paper_runs}


def exchangeability_test(values: dict[str, np.ndarray], paper_runs: list[str], fast_runs: list[str],
                         alpha: float = 0.05) -> dict[str, Any]:
    """Exact one-sided permutation test: do the ``fast`` runs agree with ``paper`` worse than ``paper`` with itself?

    ``values[run]``: the (pairs,) alignment coefficients of one run. Statistic
    ``T = mean_{f, q} rho(f, q) - mean_{q < q'} rho(q, q')`` (Spearman rho; f over
    ``fast_runs``, q over ``paper_runs``): the mean cross agreement minus the
    noise ceiling. Under the null every run is a draw from the same distribution,
    so every split of the runs into ``len(paper_runs)`` "paper" and the rest
    "fast" is as likely; ``p`` is the share of the splits whose T is at most the
    observed one. ``not_below_ceiling`` is ``p >= alpha``, or None when no split
    could reach ``p < alpha`` (fewer than ``1 / alpha`` splits: 2 runs each give 6).

    Raises ValueError with fewer than 2 runs on either side.
    """
    if len(paper_runs) < 2 or len(fast_runs) < 1:
        raise ValueError(f"exchangeability_test: needs >= 2 paper runs and >= 1 fast run, got "
                         f"{len(paper_runs)} and {len(fast_runs)}")
    runs = [*paper_runs, *fast_runs]
    rho = {}
    for a, b in itertools.combinations(runs, 2):
        rho[a, b] = rho[b, a] = float(stats.spearmanr(values[a], values[b]).statistic)

    def statistic(paper: Sequence[str]) -> float:
        fast = [r for r in runs if r not in paper]
        return float(np.mean([rho[f, q] for f in fast for q in paper])
                     - np.mean([rho[q, r] for q, r in itertools.combinations(paper, 2)]))

    observed = statistic(paper_runs)
    null = np.array([statistic(split) for split in itertools.combinations(runs, len(paper_runs))])
    p = float(np.mean(null <= observed + 1e-12))
    return {"gap": observed, "p": p, "splits": int(null.size),
            "null_range": [float(null.min()), float(null.max())],
            "not_below_ceiling": bool(p >= alpha) if null.size * alpha >= 1 else None}


def run_names(estimator: str, seeds: int) -> list[str]:
    """The report's names of an estimator's runs: ``<estimator>_seed<i>``, run i at seed offset i * SEED_STRIDE."""
    return [f"{estimator}_seed{i}" for i in range(seeds)]


def summarize(values: dict[str, np.ndarray], seeds: int) -> dict[str, Any]:
    """Every agreement statistic of the report from the runs' (pairs,) alignment values."""
    def compare(a: str, b: str) -> dict[str, float]:
        return {"spearman": float(stats.spearmanr(values[a], values[b]).statistic),
                "pearson": float(stats.pearsonr(values[a], values[b]).statistic),
                "max_abs_difference": float(np.max(np.abs(values[a] - values[b])))}

    paper_runs, fast_runs = run_names("paper", seeds), run_names("fast", seeds)
    ceilings = {f"{a} vs {b}": compare(a, b) for a, b in itertools.combinations(paper_runs, 2)}
    cross = {f"{f} vs {q}": compare(f, q) for f in fast_runs for q in paper_runs}
    fast_self = {f"{a} vs {b}": compare(a, b) for a, b in itertools.combinations(fast_runs, 2)}
    ceiling = mean_of(ceilings)
    mean_cross = float(np.mean([c["spearman"] for c in cross.values()]))
    gaps = reference_gaps(values, paper_runs, fast_runs)
    return {
        "noise_ceiling": ceiling,
        "noise_ceiling_pairs": ceilings,
        "fast_vs_paper": cross,
        "fast_vs_paper_mean_spearman": mean_cross,
        "fast_vs_paper_min_spearman": float(min(c["spearman"] for c in cross.values())),
        "fast_vs_fast": mean_of(fast_self),
        "at_ceiling": bool(mean_cross >= ceiling["spearman"]),
        "ceiling_gap_by_reference": gaps,
        "ceiling_gap_mean": float(np.mean(list(gaps.values()))),
        "exchangeability": exchangeability_test(values, paper_runs, fast_runs),
    }


SUMMARY_KEYS = ("noise_ceiling", "fast_vs_paper_mean_spearman", "fast_vs_paper_min_spearman", "fast_vs_fast",
                "at_ceiling", "ceiling_gap_mean", "exchangeability")


def mean_of(comparisons: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = next(iter(comparisons.values())).keys()
    return {k: float(np.mean([c[k] for c in comparisons.values()])) for k in keys}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=ROOT / "results", help="the default study's results (tokens/, probe/)")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "task2vec_agreement.json")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--probe", default="default", choices=("default", "gpt2", "gpt2_50k_tiny"),
                   help="the study's probe, or one of the benchmark's random probes (task2vec_bench.py)")
    p.add_argument("--probe-seed", type=int, default=0, help="seed of a random probe's weights")
    p.add_argument("--seeds", type=int, default=2, help="runs per estimator (seed offsets 0, 7919, ...)")
    p.add_argument("--num-batches", type=int, default=None, help="batches per set (default: the config's)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per batch (gpt2 default 16)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (gpt2 default 16)")
    p.add_argument("--sets", type=int, default=None, help="only the first N embedded sets")
    p.add_argument("--probe-dir", type=Path, default=None,
                   help="a local causal-LM directory (e.g. a pretrained model) as the probe; the sets' prepared "
                        "texts (results/data) are encoded by its own tokenizer (batches 16 x 16 unless given)")
    p.add_argument("--fast-options", default=None,
                   help='JSON merged into task2vec.fast for the fast runs, e.g. \'{"head_fit": "exact"}\'')
    p.add_argument("--reuse-paper", type=Path, default=None,
                   help="take the paper runs' alignment values from this earlier report of the same run "
                        "(probe, sets, batches; its first --seeds seeds, the rest computed) instead of "
                        "recomputing them")
    p.add_argument("--from-report", type=Path, default=None,
                   help="add the exchangeability test to this earlier report (from its stored values, "
                        "no embedding); written to --out")
    args = p.parse_args(argv)
    if args.from_report:
        return add_exchangeability(args.from_report, args.out)
    if args.seeds < 2:
        raise SystemExit("--seeds must be at least 2 (the noise ceiling compares paper with itself)")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    base = Task2VecConfig.from_dict(config["task2vec"])
    sets = study.embedding_sets(config)[: args.sets]
    model, base, tokenizer = probe_and_config(args, base)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
    offsets = [i * SEED_STRIDE for i in range(args.seeds)]
    identity = {"probe": args.probe if not args.probe_dir else "dir", "probe_dir": str(args.probe_dir or ""),
                "probe_seed": args.probe_seed if args.probe != "default" and not args.probe_dir else None,
                "sets": [es.label for es in sets], "batches_per_set": base.num_batches,
                "batch": [base.batch_size, base.seq_len], "seeds_per_estimator": args.seeds}
    reused: dict[str, list[float]] = {}
    if args.reuse_paper:
        old = json.loads(args.reuse_paper.read_text())
        differ = [k for k in SAME_RUN_KEYS if old.get(k) != identity[k]]
        if differ:
            raise SystemExit(f"--reuse-paper {args.reuse_paper}: not the same run ({', '.join(differ)} differ)")
        reused = {r: v for r, v in old["alignment"].items() if r.startswith("paper_") and int(r.rsplit("seed", 1)[1]) < args.seeds}
    runs = {name: (dataclasses.replace(base, estimator=est), off)
            for est in ("paper", "fast") for name, off in zip(run_names(est, args.seeds), offsets, strict=True)
            if name not in reused}
    emb: dict[str, dict[str, np.ndarray]] = {r: {} for r in runs}
    seconds: dict[str, list[float]] = {r: [] for r in runs}
    started = time.perf_counter()
    for es in sets:
        split = set_tokens(args, es, tokenizer)
        seed = study.derived_seed(config, "task2vec", es.dataset, es.split)
        batches = sample_segment_batches(split, base.num_batches, base.batch_size, base.seq_len, seed=seed, pad_id=int(pad))
        for name, (cfg, off) in runs.items():
            res = embed_batches(model, batches, cfg, seed=seed + off, progress=False)
            emb[name][es.label] = res.embeddings
            seconds[name] += res.seconds_per_batch
        print(f"[{time.perf_counter() - started:6.0f}s] {es.label}", file=sys.stderr, flush=True)
    labels = [es.label for es in sets]
    pairs = list(itertools.combinations(labels, 2))
    values = {r: np.array([alignment(emb[r][a], emb[r][b], kind=base.distance, bootstrap=0).value for a, b in pairs])
              for r in runs}
    values.update({r: np.array(v) for r, v in reused.items()})

    report: dict[str, Any] = {
        "what": "Spearman of the alignment coefficients of every pair of the default study's embedded sets",
        **identity,
        "fast_options": base.options_for("fast").to_dict(),
        "paper_reused_from": str(args.reuse_paper) if args.reuse_paper else None,
        "n_pairs": len(pairs),
        **summarize(values, args.seeds),
        "seconds_per_embedding": {r: float(np.mean(s)) for r, s in seconds.items()},
        "wall_seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pairs": [list(pq) for pq in pairs],
        "alignment": {r: v.round(6).tolist() for r, v in values.items()},
        "vocab_size": int(model.get_output_embeddings().weight.shape[0]),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in (*SUMMARY_KEYS, "seconds_per_embedding")}, indent=1))
    return 0


def add_exchangeability(source: Path, out: Path) -> int:
    """``--from-report``: ``source`` with its exchangeability test (from its stored values), written to ``out``.

    Only the test is added: the other statistics stay as measured (recomputed from
    the 6-digit stored values, ties would move the Spearman correlations by ~3e-4).
    """
    report = json.loads(source.read_text())
    values = {r: np.asarray(v, dtype=float) for r, v in report["alignment"].items()}
    seeds = int(report["seeds_per_estimator"])
    report["exchangeability"] = exchangeability_test(values, run_names("paper", seeds), run_names("fast", seeds))
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report.get(k) for k in SUMMARY_KEYS}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

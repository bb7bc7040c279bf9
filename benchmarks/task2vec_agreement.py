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
- Pearson correlations, the largest alignment difference, the 55 values per
  run and the seconds per embedding.

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
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from datalign.lm.models import load_model  # noqa: E402
from datalign.lm.tokens import TokenizedSplit, sample_segment_batches  # noqa: E402
from datalign.studies import load_config  # noqa: E402
from datalign.studies.alignment import plan as study  # noqa: E402
from datalign.task2vec import Task2VecConfig, embed_batches  # noqa: E402
from datalign.task2vec.coefficients import alignment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED_OFFSETS = (0, 7919)  # the workflow's own seed, and another


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=ROOT / "results", help="the default study's results (tokens/, probe/)")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "task2vec_agreement.json")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    base = Task2VecConfig.from_dict(config["task2vec"])
    sets = study.embedding_sets(config)
    model = load_model(str(args.results / "probe"))
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
    runs = {f"{est}_seed{i}": (dataclasses.replace(base, estimator=est), off)
            for est in ("paper", "fast") for i, off in enumerate(SEED_OFFSETS)}
    emb: dict[str, dict[str, np.ndarray]] = {r: {} for r in runs}
    seconds: dict[str, list[float]] = {r: [] for r in runs}
    started = time.perf_counter()
    for es in sets:
        split = TokenizedSplit.load(args.results / "tokens" / es.dataset / f"{es.split}.npz", name=es.label)
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

    def compare(a: str, b: str) -> dict[str, float]:
        return {"spearman": float(stats.spearmanr(values[a], values[b]).statistic),
                "pearson": float(stats.pearsonr(values[a], values[b]).statistic),
                "max_abs_difference": float(np.max(np.abs(values[a] - values[b])))}

    ceiling = compare("paper_seed0", "paper_seed1")
    cross = {f"{f} vs {q}": compare(f, q) for f in ("fast_seed0", "fast_seed1") for q in ("paper_seed0", "paper_seed1")}
    mean_cross = float(np.mean([c["spearman"] for c in cross.values()]))
    report: dict[str, Any] = {
        "what": "Spearman of the alignment coefficients of every pair of the default study's embedded sets",
        "sets": labels,
        "n_pairs": len(pairs),
        "batches_per_set": base.num_batches,
        "batch": [base.batch_size, base.seq_len],
        "noise_ceiling": ceiling,
        "fast_vs_paper": cross,
        "fast_vs_paper_mean_spearman": mean_cross,
        "fast_vs_paper_min_spearman": float(min(c["spearman"] for c in cross.values())),
        "fast_vs_fast": compare("fast_seed0", "fast_seed1"),
        "at_ceiling": bool(mean_cross >= ceiling["spearman"]),
        "seconds_per_embedding": {r: float(np.mean(s)) for r, s in seconds.items()},
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pairs": [list(pq) for pq in pairs],
        "alignment": {r: v.round(6).tolist() for r, v in values.items()},
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("noise_ceiling", "fast_vs_paper_mean_spearman",
                                             "fast_vs_paper_min_spearman", "fast_vs_fast", "at_ceiling",
                                             "seconds_per_embedding")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

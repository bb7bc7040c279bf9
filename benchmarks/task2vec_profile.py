"""Where the ``fast`` Task2Vec estimator spends its time, against the floor: torch.profiler tables.

For each probe (``default``: the study's trained probe; ``gpt2``: GPT-2 small,
124M, random weights; ``gpt2_50k_tiny``: 2 layers x 128 wide with GPT-2's
50257-token vocabulary, random weights, where the head dominates) it embeds
one batch with ``fast`` and runs one floor pass (a plain forward+backward,
:func:`task2vec_bench.floor_pass`) under ``torch.profiler``, after a warm-up
of each, and writes the top operators by self CPU time (and the wall time of
each) as text and JSON::

    .venv/bin/python benchmarks/task2vec_profile.py --results results --threads 2 \\
        --out benchmarks/task2vec_profile_after.json

Batches are the benchmark's: the study's first embedded set, the config's
batch size and length on ``default`` and ``gpt2_50k_tiny``, 16 x 16 on ``gpt2``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import task2vec_bench as bench  # noqa: E402

from datalign.studies import load_config  # noqa: E402
from datalign.task2vec import Task2VecConfig, get_estimator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def top_ops(prof: Any, k: int) -> list[dict[str, Any]]:
    rows = []
    for e in sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:k]:
        rows.append({"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1e3,
                     "total_ms": e.cpu_time_total / 1e3})
    return rows


def profile_probe(name: str, args: argparse.Namespace, config: dict[str, Any], base: Task2VecConfig,
                  device: torch.device) -> dict[str, Any]:
    """Wall times (median of ``args.repeats``) and the profile of one fast embedding and one floor pass."""
    model, cfg = bench.build_probe(name, args.results, device, base, on_gpu=False, seed=0)
    cfg = bench.with_fast(cfg, **({"precision": args.precision} if args.precision else {}))
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
    sets = bench.study.embedding_sets(config)
    batch = bench.first_batch(argparse.Namespace(config=args.config, results=args.results), sets, cfg, int(pad))
    est = get_estimator("fast")
    dtypes = bench.floor_dtypes(device, cfg)
    runs = {"fast": lambda: est.estimate(model, batch, cfg, seed=1),
            "floor": lambda: bench.floor_pass(model, batch, dtypes)}
    entry: dict[str, Any] = {"batch": list(batch.input_ids.shape), "tokens": batch.num_tokens,
                             "precision": bench.floor_label(dtypes)}
    for label, fn in runs.items():
        fn()  # warm-up
        walls = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - start)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        entry[label] = {"wall_s_median": sorted(walls)[len(walls) // 2], "top": top_ops(prof, args.top)}
    entry["ratio"] = entry["fast"]["wall_s_median"] / entry["floor"]["wall_s_median"]
    return entry


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cpu")
    config = load_config(args.config)
    base = Task2VecConfig.from_dict(config["task2vec"])
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "torch": torch.__version__, "probes": {}}
    for name in args.probes.split(","):
        entry = profile_probe(name, args, config, base, device)
        out["probes"][name] = entry
        print(f"== {name}: batch {entry['batch']}, fast {entry['fast']['wall_s_median']:.3f}s, "
              f"floor {entry['floor']['wall_s_median']:.3f}s, ratio {entry['ratio']:.2f}")
        for label in ("fast", "floor"):
            print(f"  -- {label}: top ops by self CPU time")
            for r in entry[label]["top"]:
                print(f"    {r['self_ms']:9.1f} ms  {r['calls']:5d}x  {r['op']}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    p.add_argument("--probes", default="default,gpt2,gpt2_50k_tiny")
    p.add_argument("--precision", default=None, help="the fast estimator's precision option (default: the config's)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out", type=Path, default=None, help="JSON file for the tables")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

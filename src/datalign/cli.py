"""A small command line for using the library without Snakemake.

    datalign validate CONFIG           check a study config (defaults filled), one-line errors
    datalign plan CONFIG               what the study computes: datasets, embedded sets, models
    datalign align A.npz B.npz         Task2Vec alignment between two embedding files (with CI)
    datalign diversity A.npz           Task2Vec diversity of one embedding file (with CI)
    datalign dvc-yaml [--check]        write dvc.yaml from the pipeline table (or check it)

The embedding files are the workflow's ``results/task2vec/<dataset>/<split>.npz``.
"""

from __future__ import annotations

import argparse
import json
import sys

from datalign.core.errors import DatalignError


def _validate(args: argparse.Namespace) -> None:
    from datalign.studies import load_config

    cfg = load_config(args.config)
    print(f"{args.config}: valid ({len(cfg['datasets'])} datasets, settings: {', '.join(cfg['experiments'])})")


def _plan(args: argparse.Namespace) -> None:
    from datalign.studies import load_config
    from datalign.studies.alignment import plan as study

    cfg = load_config(args.config)
    print("datasets prepared:", ", ".join(study.datasets_used(cfg)))
    print("Task2Vec sets:", ", ".join(es.label for es in study.embedding_sets(cfg)))
    for setting in study.settings(cfg):
        pairs = study.evaluation_pairs(cfg, setting)
        print(f"{setting}: {len(study.train_sets(cfg, setting))} models x "
              f"{len(study.eval_sets(cfg, setting))} evaluation sets = {len(pairs)} points")


def _coefficient(args: argparse.Namespace) -> None:
    from datalign.task2vec import load_embeddings
    from datalign.task2vec.coefficients import alignment, diversity

    common = dict(kind=args.distance, bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed)
    if args.command == "align":
        result = alignment(load_embeddings(args.a), load_embeddings(args.b), **common)
    else:
        result = diversity(load_embeddings(args.a), **common)
    print(json.dumps({args.command: result.as_dict()}, indent=2))


def _dvc_yaml(args: argparse.Namespace) -> None:
    from pathlib import Path

    from datalign.studies.pipeline import dvc_yaml

    repo = Path(args.repo)
    text = dvc_yaml(repo)
    target = repo / "dvc.yaml"
    if args.check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            raise DatalignError(f"{target} differs from the pipeline table: run `datalign dvc-yaml`")
        print(f"{target} matches the pipeline table")
        return
    target.write_text(text)
    print(f"wrote {target}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datalign", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (("validate", _validate, "check a study config"),
                                  ("plan", _plan, "list what a study computes")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("config")
        p.set_defaults(func=func)
    for name, nargs in (("align", 2), ("diversity", 1)):
        p = sub.add_parser(name, help=f"Task2Vec {name} from embedding .npz files")
        p.add_argument("a")
        if nargs == 2:
            p.add_argument("b")
        p.add_argument("--distance", default="normalized_cosine", choices=["normalized_cosine", "cosine"])
        p.add_argument("--bootstrap", type=int, default=1000)
        p.add_argument("--confidence", type=float, default=0.95)
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=_coefficient)
    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from the pipeline table (or --check it)")
    p.add_argument("--repo", default=".", help="the repository root (default: .)")
    p.add_argument("--check", action="store_true", help="fail if dvc.yaml differs from the table")
    p.set_defaults(func=_dvc_yaml)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DatalignError as err:
        print(f"datalign: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

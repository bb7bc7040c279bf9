"""The datalign command line: Task2Vec on your own files, and the study helpers.

    datalign embed FILE... -o OUT        Task2Vec embeddings of text files (.npz + .json sidecar)
    datalign align A B                   alignment of two sets (text or embedding files), with CI
    datalign diversity A                 diversity of one set (text or embedding file), with CI
    datalign rank --target T C...        every candidate against the target, sorted (table, CSV, JSON)
    datalign predict --study DIR C...    predicted loss of training on each candidate, from a finished study
    datalign validate CONFIG             check a study config (defaults filled), one-line errors
    datalign plan CONFIG                 what the study computes: datasets, embedded sets, models
    datalign dvc-yaml [--check]          write dvc.yaml from the pipeline table (or check it)

Text files: .jsonl/.json/.parquet/.csv (one document per row, field --text-field,
default "text") or .txt/.md (one document per file); see datalign.task2vec.files.
Embedding files (.npz) are what ``datalign embed`` and the workflow
(``results/alignment/task2vec/<dataset>/<split>.npz``) write. All of it is
:mod:`datalign.task2vec.api`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError, DataError, DatalignError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

EPILOG_EXIT = """exit codes:
  0  success
  2  usage error or bad input (unknown option, missing/empty/unreadable file, unknown text field,
     a file too small for the asked batches, an unreachable hub name, a bad config)
  1  any other failure (training or embedding failed, an internal error)"""

EXAMPLES = {
    "embed": """examples:
  datalign embed texts.jsonl -o emb.npz                       # tiny probe trained on texts.jsonl
  datalign embed --probe gpt2 texts.jsonl -o emb.npz          # a hub model (needs the network or its cache)
  datalign embed --probe ./my-model a.jsonl b.txt -o embs/    # several files, one probe: embs/a.npz, embs/b.npz
  datalign embed a.jsonl b.jsonl -o embs/ --save-probe probe/ # keep the trained probe to embed more later""",
    "align": """examples:
  datalign align mine.jsonl target.jsonl                      # one tiny probe trained on both files
  datalign align --probe gpt2 mine.jsonl target.jsonl --bootstrap 2000
  datalign align embs/mine.npz embs/target.npz                # from embedding files""",
    "diversity": """examples:
  datalign diversity corpus.jsonl --text-field body
  datalign diversity embs/corpus.npz""",
    "rank": """examples:
  datalign rank --target target.jsonl candidates/*.jsonl
  datalign rank --target target.jsonl a.jsonl b.parquet --probe ./probe --csv rank.csv --json rank.json
  datalign rank --target embs/target.npz embs/*.npz           # from embedding files
  datalign rank --target t.jsonl c/*.jsonl --study results/ --setting finetune  # + predicted loss""",
    "predict": """examples:
  datalign predict --study results/ --setting finetune --from-rank rank.csv
  datalign predict --study results/ --target target.jsonl candidates/*.jsonl --probe results/probe

The fit is loss = a + b * alignment by OLS on the study's points
(alignment/correlation/<setting>/points.csv), with the prediction interval of a new
observation yhat +- t(n-2) * s * sqrt(1 + 1/n + (x0 - xbar)^2 / Sxx) (datalign.stats.prediction).
Alignments compare only when made with the study's probe and Task2Vec settings.""",
    "validate": "example:\n  datalign validate config/config.yaml",
    "plan": "example:\n  datalign plan config/config.yaml",
    "dvc-yaml": "examples:\n  datalign dvc-yaml\n  datalign dvc-yaml --check",
}


def _note(message: str) -> None:
    print(f"datalign: {message}", file=sys.stderr)


# ---------------------------------------------------------------- study helpers


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


def _dvc_yaml(args: argparse.Namespace) -> None:
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


# ---------------------------------------------------------------- inputs


def _task2vec_config(args: argparse.Namespace) -> Any:
    from datalign.task2vec.config import Task2VecConfig

    given = {k: getattr(args, k) for k in ("estimator", "batch_size", "seq_len", "num_batches", "head_epochs")
             if getattr(args, k, None) is not None}
    if getattr(args, "distance", None):
        given["distance"] = args.distance
    return Task2VecConfig.from_dict(given)


def _labels(paths: Sequence[str]) -> list[str]:
    """Each file's stem, or its path as given where two files share a stem."""
    stems = [Path(p).stem for p in paths]
    return [s if stems.count(s) == 1 else str(p) for s, p in zip(stems, paths, strict=True)]


def _load_sets(paths: Sequence[str], args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """Embeddings of every input (label -> Task2VecResult or array) and the probe used (or None).

    Text files are embedded with one probe: ``--probe``, or a tiny probe
    trained on all of them. Embedding files are read as they are.
    """
    from datalign.task2vec import api
    from datalign.task2vec.artifacts import load_embeddings, load_result, sidecar_path
    from datalign.task2vec.files import is_embedding_file, read_texts

    twice = sorted({p for p in paths if list(paths).count(p) > 1})
    if twice:
        raise ConfigError(f"{twice[0]}: given twice")
    labels = _labels(paths)
    texts: dict[str, list[str]] = {}  # by path: errors and metadata name the file
    loaded: dict[str, Any] = {}
    label_of = dict(zip(paths, labels, strict=True))
    for label, path in zip(labels, paths, strict=True):
        if is_embedding_file(path):
            loaded[label] = load_result(path) if sidecar_path(path).exists() else load_embeddings(path)
        else:
            texts[path] = read_texts(path, args.text_field)
    probe = None
    if texts:
        if loaded and not args.probe:
            raise ConfigError("mixing embedding files and text files needs --probe (the probe the embeddings "
                              "were made with): a probe trained on the text files would be another probe")
        cfg = _task2vec_config(args)
        progress = not args.quiet
        if args.probe:
            probe = api.load_probe(args.probe)
        else:
            _note(f"training a tiny probe on {len(texts)} file(s) (pass --probe to use your own)")
            settings = api.TinyProbe(**({"tokens_per_set": args.probe_tokens} if args.probe_tokens else {}))
            probe = api.train_probe(texts, settings, seed=args.seed, progress=progress, seq_len=cfg.seq_len,
                                    config=cfg)
        for path, set_texts in texts.items():
            loaded[label_of[path]] = api.embed_texts(set_texts, probe, config=cfg, seed=args.seed, name=path,
                                                     progress=progress)
        if args.save_probe:
            probe.save(args.save_probe)
            _note(f"probe saved to {args.save_probe}")
    ordered = {label: loaded[label] for label in labels}
    api.check_comparable(ordered)
    return ordered, probe


def _embed(args: argparse.Namespace) -> None:
    from datalign.task2vec.artifacts import save_embeddings
    from datalign.task2vec.files import is_embedding_file

    if any(is_embedding_file(p) for p in args.files):
        raise ConfigError("embed takes text files (.jsonl, .json, .parquet, .csv, .txt, .md), not .npz")
    out = Path(args.output)
    one_file = len(args.files) == 1 and out.suffix == ".npz"
    if not one_file and out.suffix == ".npz":
        raise ConfigError(f"-o {out}: several input files need an output directory, not one .npz")
    sets, _ = _load_sets(args.files, args)
    targets = {label: out if one_file else out / f"{label.replace('/', '_')}.npz" for label in sets}
    for (label, result), path in zip(sets.items(), args.files, strict=True):
        target = targets[label]
        target.parent.mkdir(parents=True, exist_ok=True)
        save_embeddings(result, target, extra={"source_file": str(path), "text_field": args.text_field})
        print(f"{target}: {result.embeddings.shape[0]} embeddings x {result.embeddings.shape[1]} "
              f"({label}, probe {result.metadata['probe']['source']} {result.metadata['probe']['fingerprint']})")


def _coefficient(args: argparse.Namespace) -> None:
    from datalign.task2vec import api

    paths = [args.a, args.b] if args.command == "align" else [args.a]
    sets, _ = _load_sets(paths, args)
    common = dict(kind=args.distance, bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed)
    values = list(sets.values())
    if args.command == "align":
        result = api.alignment(values[0], values[1], **common)
    else:
        result = api.diversity(values[0], **common)
    print(json.dumps({args.command: result.as_dict()}, indent=2))


# ---------------------------------------------------------------- rank and predict


def _study_points(study: str, setting: str | None) -> tuple[Any, str, dict[str, Any]]:
    """The points (alignment, cross_entropy) of one setting of a finished study, its name, its stats."""
    import pandas as pd

    root = Path(study)
    if not root.is_dir():
        raise DataError(f"--study {root}: no such directory")
    candidates = [root / "alignment" / "correlation", root / "correlation", root]
    base = next((c for c in candidates if c.is_dir() and any(c.glob("*/points.csv"))), None)
    if base is None and (root / "points.csv").is_file():
        base, setting = root.parent, root.name
    if base is None:
        raise DataError(f"--study {root}: no alignment/correlation/<setting>/points.csv below it "
                        f"(is the study finished?)")
    settings = sorted(p.parent.name for p in base.glob("*/points.csv"))
    if setting is None:
        if len(settings) > 1:
            raise ConfigError(f"--study {root} has settings {', '.join(settings)}: choose one with --setting")
        setting = settings[0]
    if setting not in settings:
        raise ConfigError(f"--setting {setting}: not in {root} (settings: {', '.join(settings)})")
    points = pd.read_csv(base / setting / "points.csv")
    missing = [c for c in ("alignment", "cross_entropy") if c not in points.columns]
    if missing:
        raise DataError(f"{base / setting / 'points.csv'}: no column(s) {', '.join(missing)}")
    stats_path = base / setting / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    return points, setting, stats


def _fit_study(args: argparse.Namespace) -> tuple[Any, str, int]:
    from datalign.stats.prediction import fit_line

    points, setting, stats = _study_points(args.study, args.setting)
    fit = fit_line(points["alignment"].to_numpy(), points["cross_entropy"].to_numpy())
    pearson = stats.get("pearson", {}).get("r") if isinstance(stats.get("pearson"), dict) else None
    _note(f"fit on {fit.n} points of setting '{setting}': loss = {fit.intercept:.4g} + ({fit.slope:.4g}) x "
          f"alignment, R² {fit.r2:.3f}, residual sd {fit.residual_std:.3g}, alignment range "
          f"[{fit.x_min:.4g}, {fit.x_max:.4g}]" + (f", Pearson r {pearson:.3f}" if pearson is not None else ""))
    return fit, setting, len(points)


def _add_predictions(table: Any, fit: Any, confidence: float) -> Any:
    from datalign.stats.prediction import predict

    preds = [predict(fit, x, confidence) for x in table["alignment"]]
    table = table.copy()
    table["predicted_loss"] = [p.y for p in preds]
    table["loss_low"] = [p.low for p in preds]
    table["loss_high"] = [p.high for p in preds]
    table["outside_range"] = [p.outside_range for p in preds]
    return table


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _print_table(table: Any, confidence: float, title: str) -> None:
    pct = f"{100 * confidence:g}%"
    headers = ["#", "candidate", "alignment", f"{pct} CI"]
    rows = []
    for i, r in enumerate(table.to_dict("records"), 1):
        row = [str(i), str(r["candidate"]), _fmt(r.get("alignment")),
               f"{_fmt(r.get('ci_low'))} - {_fmt(r.get('ci_high'))}" if "ci_low" in r else "-"]
        if "predicted_loss" in r:
            row += [_fmt(r["predicted_loss"], 3), f"{_fmt(r['loss_low'], 3)} - {_fmt(r['loss_high'], 3)}",
                    "outside fitted range" if r["outside_range"] else ""]
        rows.append(row)
    if "predicted_loss" in table.columns:
        headers += ["predicted loss", f"{pct} prediction interval", "note"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _write_outputs(table: Any, args: argparse.Namespace, header: dict[str, Any]) -> None:
    from datalign.core.io import atomic_path

    if args.csv:
        with atomic_path(args.csv) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        _note(f"wrote {args.csv}")
    if args.json:
        records = json.loads(table.to_json(orient="records"))
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps({**header, "rows": records}, indent=2) + "\n")
        _note(f"wrote {args.json}")


def _measure_rank(args: argparse.Namespace) -> Any:
    """Rank with a measure of the ``datalign.measures`` registry (text files only)."""
    try:
        from datalign.measures import alignment_table, available_measures, get_measure
    except ImportError:
        raise ConfigError(f"--measure {args.measure}: unknown measure; this installation has only "
                          f"'task2vec' (no datalign.measures registry)") from None
    from datalign.task2vec.files import is_embedding_file, read_texts

    if args.measure not in available_measures():
        raise ConfigError(f"--measure {args.measure}: unknown measure (known: task2vec, "
                          f"{', '.join(available_measures())})")
    paths = [args.target, *args.candidates]
    if any(is_embedding_file(p) for p in paths):
        raise ConfigError(f"--measure {args.measure} works on text files, not .npz embeddings")
    labels = _labels(paths)
    sets = {label: read_texts(p, args.text_field) for label, p in zip(labels, paths, strict=True)}
    table = alignment_table(sets, [labels[0]], get_measure(args.measure), bootstrap=args.bootstrap,
                            confidence=args.confidence, seed=args.seed, progress=not args.quiet)
    table = table[table["set"] != labels[0]].rename(columns={"set": "candidate"})
    table = table[["candidate", "alignment", "ci_low", "ci_high", "seconds"]]
    return table.sort_values("alignment", ascending=False, kind="stable").reset_index(drop=True)


def _rank_table(args: argparse.Namespace) -> Any:
    from datalign.task2vec import api

    if args.measure != "task2vec":
        return _measure_rank(args)
    sets, _ = _load_sets([args.target, *args.candidates], args)
    labels = list(sets)
    target, candidates = sets[labels[0]], {k: sets[k] for k in labels[1:]}
    return api.rank(target, candidates, kind=args.distance, bootstrap=args.bootstrap,
                    confidence=args.confidence, seed=args.seed)


def _rank(args: argparse.Namespace) -> None:
    table = _rank_table(args)
    files = dict(zip(_labels([args.target, *args.candidates])[1:], args.candidates, strict=True))
    table.insert(0, "rank", range(1, len(table) + 1))
    table.insert(2, "file", [files[c] for c in table["candidate"]])
    fit = None
    if args.study:
        fit, setting, _ = _fit_study(args)
        table = _add_predictions(table, fit, args.confidence)
    title = (f"{len(table)} candidate(s) ranked by {args.measure} alignment with {args.target} "
             f"({100 * args.confidence:g}% bootstrap CI, {args.bootstrap} resamples)")
    _print_table(table, args.confidence, title)
    header = {"target": args.target, "measure": args.measure, "confidence": args.confidence,
              "bootstrap": args.bootstrap, "seed": args.seed}
    if fit is not None:
        header["fit"] = {"setting": setting, **fit.as_dict()}
    _write_outputs(table, args, header)


def _predict(args: argparse.Namespace) -> None:
    import pandas as pd

    if args.from_rank:
        path = Path(args.from_rank)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        try:
            if path.suffix.lower() == ".json":
                obj = json.loads(path.read_text())
                table = pd.DataFrame(obj["rows"] if isinstance(obj, dict) else obj)
            else:
                table = pd.read_csv(path)
        except (ValueError, KeyError) as exc:
            raise DataError(f"{path}: not a rank table ({exc})") from None
        if args.column not in table.columns:
            raise DataError(f"{path}: no column '{args.column}' (columns: {', '.join(map(str, table.columns))})")
        names = table["candidate"] if "candidate" in table.columns else [str(i) for i in range(len(table))]
        table = pd.DataFrame({"candidate": list(names), "alignment": table[args.column].astype(float)})
    else:
        if not args.target or not args.candidates:
            raise ConfigError("predict needs --from-rank FILE, or --target FILE and candidate files")
        _note("alignments compare with the study's only when made with its probe and Task2Vec settings "
              "(e.g. --probe results/probe and the config's task2vec block)")
        args.measure = "task2vec"
        table = _rank_table(args)
    fit, setting, _ = _fit_study(args)
    table = _add_predictions(table, fit, args.confidence)
    table = table.sort_values("predicted_loss", kind="stable").reset_index(drop=True)
    title = (f"predicted {setting} loss (cross-entropy, nats/token) of training on each candidate, "
             f"{100 * args.confidence:g}% prediction interval of a new observation")
    _print_table(table, args.confidence, title)
    _write_outputs(table, args, {"study": args.study, "setting": setting, "confidence": args.confidence,
                                 "fit": fit.as_dict()})


# ---------------------------------------------------------------- the parser


def _add_input_options(p: argparse.ArgumentParser, coefficients: bool = True) -> None:
    g = p.add_argument_group("inputs and probe (text files)")
    g.add_argument("--probe", metavar="NAME_OR_DIR",
                   help="a hub name (e.g. gpt2; needs the network or the local cache) or a local directory "
                        "with a saved causal LM and its tokenizer; default: a tiny GPT-2 and BPE trained "
                        "on the given text files themselves (seconds on a CPU)")
    g.add_argument("--text-field", default="text", help="field of .jsonl/.json/.parquet/.csv rows (default: text)")
    g.add_argument("--save-probe", metavar="DIR", help="save the probe used (e.g. the trained one) to DIR")
    g.add_argument("--probe-tokens", type=int, metavar="N",
                   help="tokens of each file the default probe trains on (default 40000; fewer: faster)")
    t = p.add_argument_group("Task2Vec (defaults: datalign.task2vec.Task2VecConfig)")
    t.add_argument("--estimator", help="Task2Vec estimator (paper, fast; default paper)")
    t.add_argument("--batch-size", type=int, help="sequences per batch (default 32)")
    t.add_argument("--seq-len", type=int, help="tokens per sequence (default 64)")
    t.add_argument("--num-batches", type=int, help="batches (embeddings) per set (default 8)")
    t.add_argument("--head-epochs", type=int, help="head fine-tuning epochs per batch (default 5)")
    t.add_argument("--seed", type=int, default=0, help="seed of batches, estimator, probe and bootstrap (default 0)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    if coefficients:
        c = p.add_argument_group("coefficients")
        c.add_argument("--distance", default=None, choices=["normalized_cosine", "cosine"],
                       help="distance between embeddings (default: the embeddings' config, else normalized_cosine)")
        c.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CI (0: none)")
        c.add_argument("--confidence", type=float, default=0.95, help="CI level (default 0.95)")


def _add_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    p.add_argument("--json", metavar="FILE", help="write the table as JSON")


def _add_study(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--study", required=required, metavar="DIR",
                   help="a finished study's results directory (with alignment/correlation/<setting>/points.csv)")
    p.add_argument("--setting", help="the study's setting to fit (needed when it has several)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datalign", description=__doc__.split("\n")[0], epilog=EPILOG_EXIT,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=f"{EXAMPLES[name]}\n\n{EPILOG_EXIT}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = command("embed", "Task2Vec embeddings of text files, written as .npz + .json sidecar", _embed)
    p.add_argument("files", nargs="+", metavar="FILE", help="text files (one dataset each)")
    p.add_argument("-o", "--output", required=True, help="an .npz file (one input) or a directory")
    _add_input_options(p, coefficients=False)
    p.set_defaults(distance=None)

    p = command("align", "Task2Vec alignment of two sets (text or .npz embedding files), with a bootstrap CI",
                _coefficient)
    p.add_argument("a", help="first set: a text file or an embedding .npz")
    p.add_argument("b", help="second set: a text file or an embedding .npz")
    _add_input_options(p)

    p = command("diversity", "Task2Vec diversity of one set (text or .npz embedding file), with a bootstrap CI",
                _coefficient)
    p.add_argument("a", help="a text file or an embedding .npz")
    _add_input_options(p)

    p = command("rank", "rank candidate sets by alignment with a target set (terminal table, CSV, JSON)", _rank)
    p.add_argument("--target", required=True, help="the target set: a text file or an embedding .npz")
    p.add_argument("candidates", nargs="+", metavar="CANDIDATE", help="candidate sets (text or .npz files)")
    p.add_argument("--measure", default="task2vec",
                   help="alignment measure: task2vec (default) or one of datalign.measures "
                        "(gzip, ngram, embedding_cosine; text files only)")
    _add_outputs(p)
    _add_study(p, required=False)
    _add_input_options(p)

    p = command("predict", "predicted loss of training on each candidate, from a finished study's fit", _predict)
    _add_study(p, required=True)
    p.add_argument("--from-rank", metavar="FILE", help="a rank table (CSV or JSON from datalign rank)")
    p.add_argument("--column", default="alignment", help="the --from-rank column holding alignment")
    p.add_argument("--target", help="the target set, to compute the candidates' alignment here")
    p.add_argument("candidates", nargs="*", metavar="CANDIDATE", help="candidate sets (with --target)")
    _add_outputs(p)
    _add_input_options(p)

    for name, func, help_text in (("validate", _validate, "check a study config"),
                                  ("plan", _plan, "list what a study computes")):
        p = command(name, help_text, func)
        p.add_argument("config")
    p = command("dvc-yaml", "write dvc.yaml from the pipeline table (or --check it)", _dvc_yaml)
    p.add_argument("--repo", default=".", help="the repository root (default: .)")
    p.add_argument("--check", action="store_true", help="fail if dvc.yaml differs from the table")
    return parser


def exit_code(err: DatalignError) -> int:
    """2 for bad input (a config or data error), 1 for any other failure."""
    return EXIT_USAGE if isinstance(err, ConfigError | DataError) else EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: argparse exits with 2
    try:
        args.func(args)
    except DatalignError as err:
        print(f"datalign: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return exit_code(err)
    except KeyboardInterrupt:
        print("datalign: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

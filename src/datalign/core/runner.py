"""Running a library step as a workflow job: logging, threads, one-line errors.

Workflow scripts are thin adapters; each one calls :func:`run_step` with the
Snakemake ``snakemake`` object (duck-typed: nothing here imports Snakemake) and
a function doing the work. Progress bars and log lines go to the rule's log
file; a :class:`DatalignError` becomes one line on the console naming the rule
and the problem, and a non-zero exit.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from datalign.core.errors import DatalignError

log = logging.getLogger("datalign")


def configure_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    """Send ``datalign`` log records (and stderr, where tqdm writes) to ``log_path``."""
    handlers: list[logging.Handler] = []
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
        handlers.append(logging.StreamHandler(stream))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    for h in handlers:
        h.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers = handlers
    root.setLevel(level)
    for noisy in ("urllib3", "filelock", "fsspec", "datasets", "httpx", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_step(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run ``main(snakemake)`` as one workflow job, with logging, thread count and error handling."""
    console = sys.stderr
    log_path = str(snakemake.log[0]) if len(snakemake.log) else None
    configure_logging(log_path)
    rule = getattr(snakemake, "rule", "?")
    wildcards = dict(snakemake.wildcards.items()) if hasattr(snakemake.wildcards, "items") else {}
    label = rule + "".join(f" {k}={v}" for k, v in wildcards.items())
    threads = max(1, int(getattr(snakemake, "threads", 1)))
    # torch's threads = the job's: directly where the script already imported torch,
    # through OMP_NUM_THREADS (read when torch loads) where it has not, so a cheap job
    # that never needs torch does not pay seconds to import it.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log.info("start %s (threads=%s)", label, getattr(snakemake, "threads", 1))
    start = time.perf_counter()
    try:
        main(snakemake)
    except DatalignError as err:
        log.error("%s failed: %s", label, err)
        print(f"datalign error in {label}: {err}", file=console, flush=True)
        sys.exit(1)
    log.info("done %s in %.1f s", label, time.perf_counter() - start)

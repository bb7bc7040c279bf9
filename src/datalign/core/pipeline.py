"""Artifact families: the one table from which the DVC stages are generated.

Snakemake owns the graph of jobs; DVC stores, shares and versions what the jobs
wrote. The bridge between them is a list of :class:`Family` objects, one per DVC
stage: which rules write the family, which rule files and scripts they run,
which directories DVC caches, which upstream artifacts and which resolved-config
keys the stage depends on. From that list alone,

* :func:`dvc_stages` writes ``dvc.yaml`` (``datalign dvc-yaml``; a test checks the
  committed file equals the generated one), with each stage's library modules
  found by following the scripts' imports (:func:`library_modules`), and
* the workflow defines one target rule ``dvc_<family>`` per family whose input is
  the family's files (the study's ``family_targets``).

Each stage runs ``snakemake dvc_<family> --allowed-rules <its rules> dvc_<family>``,
so it writes its own family and takes every upstream artifact as given.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datalign.core.lazy import EXPORTS_NAME

#: The study file every DVC stage hands to ``snakemake --configfile`` and the
#: results directory it writes to; both are DVC variables from params.yaml.
CONFIG_VAR = "${config}"
RESULTS_VAR = "${results_dir}"


@dataclass(frozen=True)
class Family:
    """One artifact family, one DVC stage.

    ``outs`` and ``deps`` are paths relative to the results directory (``""``
    prefixes nothing); ``rule_files`` and ``scripts`` are relative to the
    repository root; ``params`` are dotted keys of the resolved study file
    (``results/study.yaml``: ``config.*`` for the config, ``plan.*`` for what the
    study derived from it). ``comment`` goes above the stage in ``dvc.yaml``.
    """

    name: str
    rules: tuple[str, ...]
    rule_files: tuple[str, ...]
    scripts: tuple[str, ...]
    outs: tuple[str, ...]
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    extra_code: tuple[str, ...] = field(default=())
    cores: str = "all"
    comment: str = ""


def _module_file(src: Path, module: str) -> Path | None:
    """``src/datalign/a/b.py`` or ``src/datalign/a/b/__init__.py`` for ``datalign.a.b``."""
    base = src.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


#: A whole string that names a datalign module, optionally with an attribute: ``datalign.a.b:Name``.
_IMPORT_TARGET = re.compile(r"datalign(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def _imports(path: Path) -> set[str]:
    """``datalign`` modules a file imports (absolute imports, any depth, lazy ones and
    ``"datalign.a.b:Name"`` import targets in string literals included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "datalign")
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and node.module.split(".")[0] == "datalign"):
            found.add(node.module)
            # `from datalign.x import y` may name a submodule y.
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and _IMPORT_TARGET.fullmatch(node.value)):
            # A module named by a string and imported later: a lazily registered
            # plug-in ("datalign.task2vec.fast:FastEstimator") or import_module("datalign.x").
            found.add(node.value.split(":")[0])
    return found


def _lazy_homes(init: Path) -> dict[str, str]:
    """A package's lazily exported names -> their submodules (its ``_EXPORTS`` literal, see core.lazy)."""
    for node in ast.parse(init.read_text(), filename=str(init)).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == EXPORTS_NAME):
            exports = ast.literal_eval(node.value)
            return {name: module for module, names in exports.items() for name in names}
    return {}


def _resolve(src: Path, module: str) -> Path | None:
    """The file that running ``module`` (or importing the name it ends with) executes, if in ``src``.

    ``datalign.a.name`` where package ``datalign.a`` exports ``name`` lazily is
    the submodule that defines it: ``from datalign.a import name`` runs it.
    """
    target = _module_file(src, module)
    if target is None and "." in module:
        package, name = module.rsplit(".", 1)
        init = _module_file(src, package)
        if init is not None and init.name == "__init__.py":
            home = _lazy_homes(init).get(name)
            if home is not None:
                target = _module_file(src, f"{package}.{home}")
    return target


def _discovers_modules(path: Path) -> bool:
    """Whether a package module loads its siblings by discovery (pkgutil), not by import."""
    text = path.read_text()
    return "iter_modules" in text or "import_submodules(" in text


def library_modules(src: Path, scripts: Iterable[Path]) -> list[Path]:
    """Every file of the ``datalign`` package that ``scripts`` run, directly or not.

    Follows absolute ``datalign`` imports transitively (``from package import
    name`` of a lazily exported name, :mod:`datalign.core.lazy`, to the submodule
    that defines it), adds each imported module's parent packages'
    ``__init__.py`` (Python runs them), and every
    module of a package that discovers its modules at run time (a registry that
    scans its folder with ``pkgutil.iter_modules``). ``src`` is the directory
    holding the ``datalign`` package.
    """
    seen: set[Path] = set()
    todo = [Path(s) for s in scripts]
    for script in todo:
        if not script.is_file():
            raise FileNotFoundError(f"pipeline table names a missing script: {script}")
    while todo:
        path = todo.pop()
        for module in _imports(path):
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                target = _resolve(src, ".".join(parts[:i]))
                if target is not None and target not in seen:
                    seen.add(target)
                    todo.append(target)
                    if target.name == "__init__.py" and _discovers_modules(target):
                        for sibling in sorted(target.parent.rglob("*.py")):
                            if sibling not in seen:
                                seen.add(sibling)
                                todo.append(sibling)
    return sorted(seen)


def _results(path: str) -> str:
    return f"{RESULTS_VAR}/{path}" if path else RESULTS_VAR


def dvc_stages(families: Sequence[Family], repo: Path) -> dict[str, Any]:
    """The ``stages`` mapping of ``dvc.yaml`` for ``families`` (in order)."""
    src = repo / "src"
    stages: dict[str, Any] = {}
    for fam in families:
        code = [*fam.rule_files, *fam.scripts, *fam.extra_code]
        modules = library_modules(src, [repo / s for s in fam.scripts])
        code += [str(m.relative_to(repo)) for m in modules]
        target = f"dvc_{fam.name}"
        stage: dict[str, Any] = {
            "cmd": (
                f"snakemake {target} --cores {fam.cores} --configfile {CONFIG_VAR} "
                f"--config results_dir={RESULTS_VAR} "
                f"--allowed-rules {' '.join([*fam.rules, target])}"
            ),
        }
        if fam.params:
            stage["params"] = [{_results("study.yaml"): list(fam.params)}]
        stage["deps"] = [*[_results(d) for d in fam.deps], *dict.fromkeys(code)]
        stage["outs"] = [_results(o) for o in fam.outs]
        stages[fam.name] = stage
    return stages


def render_dvc_yaml(families: Sequence[Family], repo: Path, header: str) -> str:
    """The whole ``dvc.yaml`` text: ``header`` (comment lines), then the stages."""
    import yaml

    stages = dvc_stages(families, repo)
    out = [header.rstrip("\n"), "", "stages:"]
    for fam in families:
        if fam.comment:
            out += [f"  # {line}" if line else "  #" for line in fam.comment.splitlines()]
        body = yaml.safe_dump({fam.name: stages[fam.name]}, sort_keys=False, width=200)
        out += ["  " + line if line else line for line in body.rstrip("\n").splitlines()]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"

"""Every DVC stage depends on the library code its scripts actually load.

``dvc.yaml`` lists each stage's code dependencies from a static scan of the
scripts' imports (:func:`datalign.core.pipeline.library_modules`). Names a
package exports lazily (PEP 562, :mod:`datalign.core.lazy`) and plug-ins a
registry imports from a string (``"datalign.task2vec.fast:FastEstimator"``) are
invisible to a plain import scan: a stage that missed them would not rerun
under ``dvc repro`` when that code changes (stale results). Here the reference
is dynamic: each stage's scripts' import statements are executed in a forked
child, every registered Task2Vec estimator is instantiated, and every
``datalign`` file then in ``sys.modules`` must be among the stage's deps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from datalign.core.pipeline import library_modules

from .test_dvc import STAGES, _allowed_rules, _rule_table
from .workflow_helpers import REPO

# Runs in a fresh interpreter: third-party libraries are imported once, before
# any datalign module, then one forked child per stage imports what its scripts
# import and reports the datalign files loaded.
_CHILD = textwrap.dedent(
    """
    import ast, json, os, sys
    for heavy in ("numpy", "pandas", "scipy.stats", "sklearn.linear_model", "torch", "transformers",
                  "datasets", "matplotlib.pyplot", "yaml", "safetensors"):
        try:
            __import__(heavy)
        except ImportError:
            pass
    assert not any(m.startswith("datalign") for m in sys.modules), "datalign imported too early"
    stages = json.loads(sys.argv[1])
    result = {}
    for stage, scripts in stages.items():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for script in scripts:
                tree = ast.parse(open(script).read())
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and (
                            isinstance(node, ast.Import) or node.level == 0):
                        exec(compile(ast.Module([node], []), script, "exec"), {})
            if "datalign.task2vec.registry" in sys.modules:
                reg = sys.modules["datalign.task2vec.registry"]
                for name in reg.available_estimators():
                    reg.get_estimator(name)
            files = sorted({m.__file__ for n, m in list(sys.modules.items())
                            if n.split(".")[0] == "datalign" and getattr(m, "__file__", None)})
            os.write(w, json.dumps(files).encode())
            os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        assert status == 0, f"stage {stage}: importing its scripts failed"
        result[stage] = json.loads(b"".join(chunks))
    print(json.dumps(result))
    """
)


def _stage_scripts() -> dict[str, list[str]]:
    rules = _rule_table()
    out = {}
    for stage in STAGES:
        scripts = [rules[r][1] for r in _allowed_rules(stage) if r in rules and rules[r][1]]
        if scripts:
            out[stage] = [str(REPO / s) for s in scripts]
    return out


def test_every_stage_depends_on_the_modules_its_scripts_load():
    stages = _stage_scripts()
    assert {"task2vec", "alignment", "ea_runs", "si_features"} <= set(stages)
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(stages)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    problems = {}
    for stage, files in loaded.items():
        deps = {d for d in STAGES[stage]["deps"] if not d.startswith("${")}
        rel = [str(Path(f).resolve().relative_to(REPO)) for f in files]
        missing = [f for f in rel if f not in deps]
        if missing:
            problems[stage] = missing
    assert not problems, f"stages load code their dvc.yaml deps omit (dvc repro would go stale): {problems}"
    # The shipped estimators' implementations are loaded through registry strings.
    assert "src/datalign/task2vec/fast.py" in STAGES["task2vec"]["deps"]
    assert "src/datalign/task2vec/embed.py" in STAGES["task2vec"]["deps"]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_library_modules_follows_lazy_exports_and_string_targets(tmp_path):
    """``from pkg import name`` runs the submodule defining ``name``, not its siblings;
    a ``"datalign.a.b:Name"`` string names a module to load."""
    src = tmp_path / "src"
    _write(src / "datalign" / "__init__.py", "")
    _write(src / "datalign" / "pkg" / "__init__.py", """
        from datalign.core.lazy import lazy_exports
        _EXPORTS = {"used": ("thing",), "unused": ("other",)}
        __getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
        """)
    _write(src / "datalign" / "pkg" / "used.py", 'TARGET = "datalign.plugins.impl:Impl"\nthing = 1\n')
    _write(src / "datalign" / "pkg" / "unused.py", "other = 2\n")
    _write(src / "datalign" / "plugins" / "__init__.py", "")
    _write(src / "datalign" / "plugins" / "impl.py", "class Impl: ...\n")
    _write(src / "datalign" / "core" / "__init__.py", "")
    _write(src / "datalign" / "core" / "lazy.py", "def lazy_exports(*a, **k): ...\n")
    script = _write(tmp_path / "script.py", "from datalign.pkg import thing\n")
    found = {str(p.relative_to(src)) for p in library_modules(src, [script])}
    assert "datalign/pkg/used.py" in found
    assert "datalign/plugins/impl.py" in found
    assert "datalign/pkg/unused.py" not in found

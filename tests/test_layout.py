"""The repository's shape: shared layers never reach into a study, studies ship their schemas."""

from __future__ import annotations

import ast
from pathlib import Path

from datalign.studies import STUDY_NAMES, config_schema, get_study

from .conftest import REPO

SRC = REPO / "src" / "datalign"
STUDIES = SRC / "studies"
# The application layer above the library may use the studies.
ENTRY_POINTS = {SRC / "cli.py"}


def _datalign_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.split(".")[0] == "datalign"}


def test_nothing_outside_studies_imports_from_studies():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(STUDIES) or path in ENTRY_POINTS:
            continue
        bad = sorted(m for m in _datalign_imports(path) if m.startswith("datalign.studies"))
        if bad:
            offenders.append(f"{path.relative_to(REPO)}: {', '.join(bad)}")
    assert not offenders, "shared layers import from a study:\n" + "\n".join(offenders)


def test_a_study_does_not_import_another_study():
    for name in STUDY_NAMES:
        for path in sorted((STUDIES / name).rglob("*.py")):
            others = {m for m in _datalign_imports(path)
                      if m.startswith("datalign.studies.") and m.split(".")[2] != name}
            assert not others, f"{path.relative_to(REPO)} imports another study: {sorted(others)}"


def test_every_study_ships_its_schema_and_rules():
    schema = config_schema()
    for name in STUDY_NAMES:
        study = get_study(name)
        assert study.schema.is_file() and study.schema.is_relative_to(SRC), study.schema
        for rule_file in study.rule_files:
            assert (REPO / rule_file).is_file(), rule_file
        for family in study.families:
            for script in family.scripts:
                assert (REPO / script).is_file(), script
    assert set(schema["properties"]["studies"]["items"]["enum"]) == set(STUDY_NAMES)


def test_root_snakefile_and_profiles_where_snakemake_finds_them():
    assert (REPO / "Snakefile").is_file()
    assert not (REPO / "workflow" / "Snakefile").exists()
    profile = (REPO / "profiles" / "default" / "config.yaml").read_text()
    assert "configfile: config/config.yaml" in profile
    assert (REPO / "profiles" / "slurm" / "config.yaml").is_file()


def test_no_snakemake_internals_in_the_workflow():
    text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk")])
    for internal in ("workflow.persistence", "config_settings", "IOFile", "overwrite_config"):
        assert internal not in text, internal


def test_path_patterns_are_written_once():
    """No rule file spells an artifact path: they all come from the path tables."""
    for smk in (REPO / "workflow" / "rules").rglob("*.smk"):
        text = smk.read_text()
        assert 'f"{R}/' not in text and "{R}/" not in text, smk

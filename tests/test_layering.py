"""The layering rules hold, with no exemptions: the core imports no outer layer, the API never
imports activities or workflows, workflows never import activities, only the composition root
imports the API, nothing imports the composition root, and only the projection writes jobs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PRODUCT = ("redrive", "redrive_cli", "api", "activities", "workflows", "worker.py")
ROOT_PACKAGE = "redrive_cli"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(*packages: str) -> list[Path]:
    paths: list[Path] = []
    for package in packages:
        target = ROOT / package
        paths += [target] if target.is_file() else sorted(target.rglob("*.py"))
    return paths


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("redrive", {"api", "workflows", "activities", "worker", ROOT_PACKAGE}),
        ("api", {"activities", "workflows", "worker", ROOT_PACKAGE}),
        ("activities", {"api", "workflows", "worker", ROOT_PACKAGE}),
        ("workflows", {"api", "activities", "worker", ROOT_PACKAGE}),
        ("worker.py", {"api", ROOT_PACKAGE}),
    ],
)
def test_layers_import_inward_only(package: str, forbidden: set[str]) -> None:
    """No module of `package` imports a layer it must not know about."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & forbidden)
        for path in _modules(package)
        if _imports(path) & forbidden
    }
    assert offenders == {}


def test_only_the_composition_root_imports_the_api() -> None:
    """`api` is assembled by the composition root alone; no other product module imports it."""
    importers = {
        str(path.relative_to(ROOT))
        for path in _modules(*PRODUCT)
        if "api" in _imports(path) and not path.is_relative_to(ROOT / "api")
    }
    assert {name.split("/")[0] for name in importers} <= {ROOT_PACKAGE}, importers


PROJECTION = ROOT / "redrive" / "store" / "projection"
PROJECTED = {"Job", "JobStage", "StageFailure", "JobAction", "JOBS", "JOB_STAGES"}
"""The projection's tables, as ORM classes or as tables."""
WRITES = {"insert", "dialect_insert", "update", "delete", "add", "add_all", "merge"}


def _writes_to_projection(path: Path) -> list[int]:
    """Lines of `path` that build an insert, update or delete of a projection table, or add one of
    its rows to a session."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        target = node.args[-1]
        target = target.func if isinstance(target, ast.Call) else target
        if name in WRITES and getattr(target, "id", None) in PROJECTED:
            lines.append(node.lineno)
    return lines


def test_only_the_projection_writes_jobs() -> None:
    """Every write of `jobs`, `job_stages`, `stage_failures` and `job_actions` is built in
    `redrive.store.projection`; everything else reads them."""
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in _modules(*PRODUCT)
        if not path.is_relative_to(PROJECTION) and (lines := _writes_to_projection(path))
    }
    assert offenders == {}


def test_the_write_check_sees_writes() -> None:
    """The check above finds the writes the projection makes, so an empty result means something."""
    found = {path.name: _writes_to_projection(path) for path in _modules("redrive/store/projection")}
    assert found["writes.py"], found
    assert found["statements.py"], found

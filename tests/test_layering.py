"""The layering rules hold, with no exemptions: the core imports no outer layer, the API never
imports activities or workflows, workflows never import activities, only the composition root
imports the API, nothing imports the composition root, and only the projection writes jobs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LAYERS = {
    "redrive.api": "api",
    "redrive.workflows": "workflows",
    "redrive.activities": "activities",
    "redrive.worker": "worker",
    "redrive_cli": "root",
    "redrive": "core",
}
"""Module prefix -> layer; the longest prefix that matches decides."""


def _layer(module: str) -> str | None:
    for prefix, layer in LAYERS.items():  # the narrower prefixes come first
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """The layers `path` imports from (`from redrive import workflows` imports the workflows layer)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {layer for name in names if (layer := _layer(name)) is not None}


def _modules(layer: str) -> list[Path]:
    """The product's files in `layer` (the top-level api/, workflows/, activities/ are links into
    redrive/, so each file is read once, under its installed name)."""
    files = sorted((ROOT / "redrive").rglob("*.py")) + sorted((ROOT / "redrive_cli").rglob("*.py"))
    return [path for path in files if _layer(_module(path)) == layer]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("core", {"api", "workflows", "activities", "worker", "root"}),
        ("api", {"activities", "workflows", "worker", "root"}),
        ("activities", {"api", "workflows", "worker", "root"}),
        ("workflows", {"api", "activities", "worker", "root"}),
        ("worker", {"api", "root"}),
    ],
)
def test_layers_import_inward_only(layer: str, forbidden: set[str]) -> None:
    """No module of `layer` imports a layer it must not know about."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & forbidden)
        for path in _modules(layer)
        if _imports(path) & forbidden
    }
    assert _modules(layer), layer
    assert offenders == {}


def test_only_the_composition_root_imports_the_api() -> None:
    """`api` is assembled by the composition root alone; no other product module imports it."""
    importers = {
        _layer(_module(path))
        for layer in ("core", "activities", "workflows", "worker", "root")
        for path in _modules(layer)
        if "api" in _imports(path)
    }
    assert importers <= {"root"}, importers


def test_the_installed_names_are_redrives_own() -> None:
    """The distribution installs `redrive` and `redrive_cli` only: a user's own top-level `api`,
    `worker`, `workflows` or `activities` module cannot clash with it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py-modules" not in config
    assert config["packages"]["find"]["include"] == ["redrive", "redrive.*", "redrive_cli", "redrive_cli.*"]


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
    product = [
        path
        for layer in ("core", "api", "activities", "workflows", "worker", "root")
        for path in _modules(layer)
    ]
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in product
        if not path.is_relative_to(PROJECTION) and (lines := _writes_to_projection(path))
    }
    assert offenders == {}


def test_the_write_check_sees_writes() -> None:
    """The check above finds the writes the projection makes, so an empty result means something."""
    found = {path.name: _writes_to_projection(path) for path in PROJECTION.glob("*.py")}
    assert found["writes.py"], found
    assert found["statements.py"], found


def test_a_users_own_generic_modules_do_not_clash(tmp_path: Path) -> None:
    """A user's environment with its own top-level `api`, `worker`, `workflows` and `activities`
    modules (first on its path) loads redrive's API, worker and job types beside them."""
    for name in ("api", "worker", "workflows", "activities"):
        (tmp_path / f"{name}.py").write_text("MINE = True\n")
    script = (
        "import api, worker, workflows, activities\n"
        "assert all(module.MINE for module in (api, worker, workflows, activities))\n"
        "import redrive.worker, redrive.api\n"
        "from redrive.jobtypes import load_job_types, stage_handlers\n"
        "stage_handlers(load_job_types())\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr

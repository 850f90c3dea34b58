"""The layering rules hold: the core imports no outer layer, and the API never imports activities."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
ASSEMBLY = {"redrive/cli.py", "redrive/dev.py"}  # the places that wire every layer together


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if str(p.relative_to(ROOT)) not in ASSEMBLY]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("redrive", {"api", "workflows", "activities", "worker"}),
        ("api", {"activities", "workflows", "worker"}),
        ("activities", {"api", "workflows", "worker"}),
        ("workflows", {"api", "worker"}),
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

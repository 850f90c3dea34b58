"""The `redrive` command stops on bad configuration with a message naming the key."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REDRIVE = [sys.executable, "-m", "redrive_cli"]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REDRIVE, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False
    )


def test_bad_config_stops_start_up(tmp_path: Path) -> None:
    """A misspelt key in REDRIVE_CONFIG exits 2 and names the key."""
    config = tmp_path / "redrive.toml"
    config.write_text("[job_types.demo]\nmax_retrys = 2\n")
    result = _run(["migrate"], REDRIVE_CONFIG=str(config), REDRIVE_HOME=str(tmp_path))
    assert result.returncode == 2
    assert "job_types.demo.max_retrys: unknown key" in result.stderr


def test_migrate_creates_the_tables(tmp_path: Path) -> None:
    """`redrive migrate` brings a new SQLite file to the latest schema, and a second run is a no-op."""
    for _ in range(2):
        result = _run(["migrate"], REDRIVE_HOME=str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "database is up to date" in result.stdout
    with sqlite3.connect(tmp_path / "redrive.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "job_stages", "stage_failures", "dead_letters", "alembic_version"} <= tables

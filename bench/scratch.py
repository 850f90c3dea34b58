"""The folder a benchmark run keeps its dev server's database, job databases and worker logs in.

A run of `bench.throughput` leaves hundreds of megabytes there (the server's SQLite file grows with
every round), and these machines are shared: the folder goes when the run ends well. A run that
fails keeps it, and says where, for the logs."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

TAIL_LINES = 20
"""How much of a worker's log a warning about its exit quotes."""


@contextlib.contextmanager
def scratch_home(prefix: str) -> Iterator[Path]:
    """A new folder under the system's temporary directory: removed when the block ends, kept
    (and named on stderr) when it raises."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield home
    except BaseException:
        print(f"the run's files (server database, worker logs) are kept in {home}", file=sys.stderr)
        raise
    shutil.rmtree(home, ignore_errors=True)


def tail(log: Path, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of `log`, for a message that outlives the file."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return f"({log} was not written)"
    return "\n".join(text.splitlines()[-lines:])

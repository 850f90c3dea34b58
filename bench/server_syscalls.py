"""The Temporal server's system calls per job, counted by `perf stat` through a timed round.

The server's CPU per job moves by a fifth from one round to the next with the speed of this shared
machine; how many times it calls the kernel for a job does not. SQLite's page reads and writes
(`pread64`, `pwrite64`), its locks (`fcntl`) and checkpoints (`fsync`), and the gRPC traffic
between the server's own services and with the clients (`write`, `read`) are counted, beside the
total, context switches and page faults. A side whose jobs touch more pages of the server's B-trees,
or send it more bytes, shows here with a spread of a few percent rather than a fifth.

Tracepoint events need no hardware counters (which these virtual machines do not have), only
`perf` and a kernel that lets root attach to another process. Counting costs the server a little
CPU on every call, on every side alike.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

from bench.server_profile import perf_attached

TOTAL = "syscalls, all"
CALLS = ("pread64", "pwrite64", "fcntl", "fsync", "write", "read", "futex", "epoll_pwait", "nanosleep")
EVENTS = {
    "raw_syscalls:sys_enter": TOTAL,
    **{f"syscalls:sys_enter_{call}": call for call in CALLS},
    "context-switches": "context switches",
    "page-faults": "page faults",
}
"""perf's event name -> the row it is printed under."""


def available() -> str | None:
    """Why `--syscalls` cannot run here, or None."""
    if shutil.which("perf") is None:
        return "--syscalls needs perf (Debian: apt-get install linux-perf)"
    check = subprocess.run(
        ["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        return f"--syscalls: perf cannot count system calls here: {check.stderr.strip()[:200]}"
    return None


def recording(pid: int, output: Path) -> contextlib.AbstractAsyncContextManager[None]:
    """Count process `pid`'s events (all its threads) into `output` while the block runs."""
    return perf_attached("stat", "-x,", "-o", str(output), "-e", ",".join(EVENTS), "-p", str(pid))


def parse(text: str) -> dict[str, float]:
    """The counts in `perf stat -x,` output, by row name; an event perf could not count is left out."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in EVENTS and fields[0].replace(".", "", 1).isdigit():
            counts[EVENTS[fields[2]]] = float(fields[0])
    return counts


def per_job(output: Path, jobs: int) -> dict[str, float]:
    """Each row's count per job in one recording."""
    return {name: count / jobs for name, count in parse(output.read_text()).items()}

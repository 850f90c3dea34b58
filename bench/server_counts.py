"""What the Temporal server did for a round, by its own counters (its Prometheus `/metrics`).

CPU time on a shared machine moves with the neighbours by ±20 % from round to round; these counts
do not. They say whether a redrive job asks more of the server than a bare one: how many database
requests, how many visibility writes, how many history tasks, and how many bytes of history and
mutable state it wrote. Timers fire after the round that set them (a workflow task's timeout
10 s later, an activity's heartbeat or start-to-close timeout 10 or 60 s later), so part of each
round's history tasks and requests is the work an earlier round left.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping

import aiohttp

FIGURES: dict[str, tuple[str, ...]] = {
    "db requests": ("persistence_requests",),
    "visibility writes": ("visibility_persistence_requests",),
    "history tasks": ("task_requests",),
    "event bytes": ("event_blob_size_sum",),
    "state bytes": ("mutable_state_size_sum",),
    "sync matches": ("poll_success_sync",),
    "task-queue writes": ('persistence_requests{operation="CreateTasks"}',),
}
"""Each figure: the sum of these series over all their labels, or over the lines with the one label
named in braces. A task handed to a poll already waiting is a synchronous match; a task that finds
none is written to the task queue's table and read back later, which costs the server more."""

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$")
_READS = re.compile(r'operation="(Get|List|Read|Range)')
"""Visibility requests that read (the benchmark's waits ask none, but a UI might)."""


def totals(text: str) -> dict[str, float]:
    """The figures' series summed from a Prometheus text exposition."""
    wanted = {series for names in FIGURES.values() for series in names}
    sums: defaultdict[str, float] = defaultdict(float)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match[1], (match[2] or "").split(","), float(match[3])
        for label in labels:
            if (labelled := f"{name}{{{label}}}") in wanted:
                sums[labelled] += value
        if name not in wanted or (name == "visibility_persistence_requests" and _READS.search(line)):
            continue
        sums[name] += value
    return dict(sums)


async def read(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The server's counters now."""
    async with http.get(url) as response:
        response.raise_for_status()
        return totals(await response.text())


def per_job(before: Mapping[str, float], after: Mapping[str, float], jobs: int) -> dict[str, float]:
    """Each figure's growth between two readings, per job."""
    return {
        figure: sum(after.get(series, 0.0) - before.get(series, 0.0) for series in names) / jobs
        for figure, names in FIGURES.items()
    }

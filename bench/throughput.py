"""Jobs per second: N three-stage `demo` jobs through redrive (HTTP API, JobWorkflow, stage
activities with the SQL projection on SQLite in WAL mode) against N bare Temporal workflows running
three no-op activities, on the same dev server in the same run, rounds alternating; and the bare
workflow with one search-attribute upsert (queued -> running), the ceiling for keeping a job's
status in Temporal's visibility, which redrive does.

    python -m bench.throughput [--jobs 400] [--rounds 3] [--concurrency 20]

Both sides submit with the same concurrency and are timed from the first submission until Temporal
counts every workflow of their task queue as Completed. Jobs go to redrive over HTTP with aiohttp:
the load generator stands for clients on other machines, and httpx cost more CPU per request
(1.7 ms) than the API itself, all of it charged to redrive on this shared box. Beside jobs/s it
prints the CPU each job cost in this process (API, worker, load generator) and in the Temporal
server: on a shared, noisy machine CPU per job moves less than wall-clock rates.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

import worker as redrive_worker
from bench import bare as bare_module
from bench.bare import JOB_STATUS, BareStatusWorkflow, BareWorkflow, bare_stage
from redrive.store import upgrade
from tests.support import running_api, running_worker, settings_for, start_dev_server


@dataclass(frozen=True)
class Sample:
    """One round: throughput and CPU milliseconds per job, here and in the server."""

    rate: float
    local_cpu_ms: float
    server_cpu_ms: float


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _server_pid(db_file: Path) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if str(db_file).encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
    raise RuntimeError(f"no Temporal server process found for {db_file}")


Measure = Callable[[Callable[[], Awaitable[None]]], Awaitable[Sample]]


def measuring(jobs: int, server_pid: int) -> Measure:
    """A function that times `work` and charges its CPU to `jobs` jobs."""

    async def measure(work: Callable[[], Awaitable[None]]) -> Sample:
        local, server, started = time.process_time(), _process_cpu_s(server_pid), time.perf_counter()
        await work()
        elapsed = time.perf_counter() - started
        return Sample(
            rate=jobs / elapsed,
            local_cpu_ms=(time.process_time() - local) * 1000 / jobs,
            server_cpu_ms=(_process_cpu_s(server_pid) - server) * 1000 / jobs,
        )

    return measure


async def _bounded(count: int, concurrency: int, submit: Callable[[int], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await submit(index)

    await asyncio.gather(*(one(index) for index in range(count)))


async def _until_completed(client: Client, task_queue: str, count: int) -> None:
    query = f'TaskQueue="{task_queue}" AND ExecutionStatus="Completed"'
    while (await client.count_workflows(query)).count < count:  # noqa: ASYNC110 -- polling the server
        await asyncio.sleep(0.1)


async def fresh_database(home: Path) -> str:
    """The URL of a new, migrated SQLite database under `home`."""
    database = f"sqlite+aiosqlite:///{home / f'{uuid.uuid4().hex}.db'}"
    await upgrade(database)
    return database


async def redrive_round(client: Client, home: Path, jobs: int, concurrency: int, measure: Measure) -> Sample:
    """Jobs/s through the real API and worker."""
    database = await fresh_database(home)
    settings = settings_for(database, home)
    async with (
        running_worker(client, settings),
        running_api(settings, client) as url,
        aiohttp.ClientSession(base_url=url, headers={"Authorization": "Bearer key-a"}) as http,
    ):

        async def submit(_: int) -> None:
            async with http.post("/v1/jobs", json={"type": "demo", "payload": {}}) as response:
                response.raise_for_status()
                await response.read()

        async def work() -> None:
            await _bounded(jobs, concurrency, submit)
            await _until_completed(client, settings.task_queue, jobs)

        return await measure(work)


async def bare_round(
    client: Client, jobs: int, concurrency: int, measure: Measure, with_status: bool = False
) -> Sample:
    """Jobs/s for the plain workflow, with the same worker tuning (and bytecode cache) as redrive's;
    `with_status` runs it with the one search-attribute upsert of a status change."""
    compileall.compile_file(bare_module.__file__, quiet=2)
    task_queue = f"bare-{uuid.uuid4().hex[:8]}"
    flow: type[BareWorkflow | BareStatusWorkflow] = BareStatusWorkflow if with_status else BareWorkflow
    status = TypedSearchAttributes([SearchAttributePair(JOB_STATUS, "queued")]) if with_status else None
    bare = Worker(
        client,
        task_queue=task_queue,
        workflows=[flow],
        activities=[bare_stage],
        workflow_runner=redrive_worker.workflow_runner(),
        max_concurrent_workflow_task_polls=20,
        max_concurrent_activity_task_polls=20,
    )
    async with bare:

        async def submit(index: int) -> None:
            await client.start_workflow(
                flow.run, {}, id=f"{task_queue}-{index}", task_queue=task_queue, search_attributes=status
            )

        async def work() -> None:
            await _bounded(jobs, concurrency, submit)
            await _until_completed(client, task_queue, jobs)

        return await measure(work)


async def main(jobs: int, rounds: int, concurrency: int) -> None:
    """Alternate redrive and bare rounds on one dev server; print medians and the ratio."""
    home = Path(tempfile.mkdtemp(prefix="redrive-bench-"))
    env = await start_dev_server(home / "temporal.db")
    results: dict[str, list[Sample]] = {"bare": [], "redrive": [], "bare+status": []}
    async with env:
        measure = measuring(jobs, _server_pid(home / "temporal.db"))
        for number in range(1, rounds + 1):
            results["bare"].append(await bare_round(env.client, jobs, concurrency, measure))
            results["redrive"].append(await redrive_round(env.client, home, jobs, concurrency, measure))
            status_sample = await bare_round(env.client, jobs, concurrency, measure, with_status=True)
            results["bare+status"].append(status_sample)
            print(
                f"round {number}: " + ", ".join(_describe(n, s[-1]) for n, s in results.items()), flush=True
            )
    medians = {name: _median(samples) for name, samples in results.items()}
    print(f"median of {rounds} rounds, {jobs} jobs each, concurrency {concurrency}:")
    for name, sample in medians.items():
        print(f"  {_describe(name, sample)}")
    bare, ours, ceiling = medians["bare"], medians["redrive"], medians["bare+status"]
    print(f"  ratio    {ours.rate / bare.rate:.2f} of bare throughput (goal >= 0.90)")
    print(
        f"  ceiling  {ceiling.rate / bare.rate:.2f}: bare with the one search-attribute upsert of "
        "queued -> running, which redrive keeps"
    )
    print(
        f"  extra CPU per job: {ours.local_cpu_ms - bare.local_cpu_ms:+.1f} ms here, "
        f"{ours.server_cpu_ms - bare.server_cpu_ms:+.1f} ms in the server"
    )


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        rate=statistics.median(sample.rate for sample in samples),
        local_cpu_ms=statistics.median(sample.local_cpu_ms for sample in samples),
        server_cpu_ms=statistics.median(sample.server_cpu_ms for sample in samples),
    )


def _describe(name: str, sample: Sample) -> str:
    return (
        f"{name} {sample.rate:.1f} jobs/s, CPU/job {sample.local_cpu_ms:.1f} ms here + "
        f"{sample.server_cpu_ms:.1f} ms server"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.rounds, arguments.concurrency))

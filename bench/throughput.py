"""Jobs per second: N three-stage `demo` jobs through redrive (HTTP API, JobWorkflow, stage
activities with the SQL projection on SQLite in WAL mode) against N bare Temporal workflows running
three no-op activities, on the same dev server in the same run, rounds alternating.

    python -m bench.throughput [--jobs 400] [--rounds 3] [--concurrency 20]

Both sides submit with the same concurrency and are timed from the first submission until Temporal
counts every workflow of their task queue as Completed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import worker as redrive_worker
from bench.bare import BareWorkflow, bare_stage
from redrive.store import upgrade
from tests.support import running_api, running_worker, settings_for, start_dev_server


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


async def redrive_round(client: Client, home: Path, jobs: int, concurrency: int) -> float:
    """Jobs/s through the real API and worker."""
    database = f"sqlite+aiosqlite:///{home / f'{uuid.uuid4().hex}.db'}"
    await upgrade(database)
    settings = settings_for(database, home)
    async with (
        running_worker(client, settings),
        running_api(settings, client) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer key-a"}, timeout=60) as http,
    ):

        async def submit(_: int) -> None:
            response = await http.post("/v1/jobs", json={"type": "demo", "payload": {}})
            response.raise_for_status()

        started = time.perf_counter()
        await _bounded(jobs, concurrency, submit)
        await _until_completed(client, settings.task_queue, jobs)
        return jobs / (time.perf_counter() - started)


async def bare_round(client: Client, jobs: int, concurrency: int) -> float:
    """Jobs/s for the plain workflow, with the same worker tuning as redrive's."""
    task_queue = f"bare-{uuid.uuid4().hex[:8]}"
    bare = Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow],
        activities=[bare_stage],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*redrive_worker.PASSTHROUGH)
        ),
        max_concurrent_workflow_task_polls=20,
        max_concurrent_activity_task_polls=20,
    )
    async with bare:

        async def submit(index: int) -> None:
            await client.start_workflow(
                BareWorkflow.run, {}, id=f"{task_queue}-{index}", task_queue=task_queue
            )

        started = time.perf_counter()
        await _bounded(jobs, concurrency, submit)
        await _until_completed(client, task_queue, jobs)
        return jobs / (time.perf_counter() - started)


async def main(jobs: int, rounds: int, concurrency: int) -> None:
    """Alternate redrive and bare rounds on one dev server; print medians and the ratio."""
    home = Path(tempfile.mkdtemp(prefix="redrive-bench-"))
    env = await start_dev_server(home / "temporal.db")
    results: dict[str, list[float]] = {"redrive": [], "bare": []}
    async with env:
        for number in range(1, rounds + 1):
            results["bare"].append(await bare_round(env.client, jobs, concurrency))
            results["redrive"].append(await redrive_round(env.client, home, jobs, concurrency))
            print(
                f"round {number}: bare {results['bare'][-1]:.1f} jobs/s, "
                f"redrive {results['redrive'][-1]:.1f} jobs/s",
                flush=True,
            )
    bare, ours = statistics.median(results["bare"]), statistics.median(results["redrive"])
    print(f"median of {rounds} rounds, {jobs} jobs each, concurrency {concurrency}:")
    print(f"  bare Temporal  {bare:.1f} jobs/s")
    print(f"  redrive        {ours:.1f} jobs/s")
    print(f"  ratio          {ours / bare:.2f}  (goal ≥ 0.90)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.rounds, arguments.concurrency))

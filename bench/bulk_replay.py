"""Bulk replay: N dead letters drained by two identical replay campaigns (`POST /v1/replays`)
racing each other, against the same N resets done by hand with the Temporal client (fetch the
history, find the failed stage's reset point, reset) on another N dead jobs, on one dev server in
one run.

    python -m bench.bulk_replay [--jobs 1000] [--rate 1000] [--concurrency 32] [--postgres]

Bare resets run as many at once as one campaign may (two steps of 16). It prints how long each
side took to replay everything (redrive: until both campaigns have taken every entry; their
clean-up of replaced runs is timed apart), the ratio of replays per second
(goal: at least 0.9 of bare resets'), the replays the racing pair made between them (the goal is
exactly N, not 2N), and that every job completed and the queue is empty.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from redrive.operations import reset_point
from redrive.operations.campaigns import CONCURRENCY
from redrive.store import upgrade
from redrive.workflows.replay_campaign import STEPS_IN_FLIGHT
from tests.support import running_api, running_worker, settings_for, start_dev_server

KEY = {"Authorization": "Bearer key-a"}
POSTGRES = os.environ.get("REDRIVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
GOAL = 0.9
POLL = 0.5
"""Seconds between looks at the campaigns' progress (the CLI's progress bar looks every second):
each look is a query the worker answers and a count in the database, load bare resets do not have."""


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def _wait_for(client: Client, query: str, count: int) -> None:
    while await _count(client, query) < count:  # noqa: ASYNC110 -- polling the server
        await asyncio.sleep(0.2)


async def _dead_jobs(
    http: httpx.AsyncClient, client: Client, task_queue: str, jobs: int, breaker: Path
) -> None:
    fail = {"stage": "process", "error": "ValidationError", "while_exists": str(breaker)}
    gate = asyncio.Semaphore(20)

    async def one(_: int) -> None:
        async with gate:
            (await http.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})).raise_for_status()

    await asyncio.gather(*(one(index) for index in range(jobs)))
    await _wait_for(client, f'TaskQueue="{task_queue}" AND ExecutionStatus="Failed"', jobs)


async def _bare_resets(client: Client, job_ids: list[tuple[str, str]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(job_id: str, run_id: str) -> None:
        async with gate:
            point = await reset_point(client, job_id, run_id, "process")
            assert point is not None
            await client.workflow_service.reset_workflow_execution(
                ResetWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=job_id, run_id=run_id),
                    reason="bench",
                    workflow_task_finish_event_id=point,
                    request_id=str(uuid.uuid4()),
                )
            )

    await asyncio.gather(*(one(job_id, run_id) for job_id, run_id in job_ids))


@contextlib.asynccontextmanager
async def _database(home: Path, side: str, postgres: bool) -> AsyncIterator[str]:
    """A migrated database for one side: a SQLite file, or a fresh PostgreSQL database."""
    if not postgres:
        url = f"sqlite+aiosqlite:///{home / f'{side}.db'}"
        await upgrade(url)
        yield url
        return
    name = f"redrive_bench_{side}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        await upgrade(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(jobs: int, rate: float, concurrency: int, postgres: bool = False) -> None:
    """Both sides on one server; print times, rate, runs started and what is left in the queue."""
    home = Path(tempfile.mkdtemp(prefix="redrive-bench-"))
    env = await start_dev_server(home / "temporal.db")
    async with env, contextlib.AsyncExitStack() as stack:
        client = env.client
        for side in ("bare", "redrive"):
            database = await stack.enter_async_context(_database(home, side, postgres))
            settings = settings_for(database, home)
            queue = settings.task_queue
            breaker = home / f"break-{side}"
            breaker.touch()
            async with (
                running_worker(client, settings),
                running_api(settings, client) as url,
                httpx.AsyncClient(base_url=url, headers=KEY, timeout=3600) as http,
            ):
                started = time.perf_counter()
                await _dead_jobs(http, client, queue, jobs, breaker)
                print(f"{side}: {jobs} dead letters in {time.perf_counter() - started:.1f} s", flush=True)
                breaker.unlink()
                started = time.perf_counter()
                if side == "bare":
                    failed = client.list_workflows(f'TaskQueue="{queue}" AND ExecutionStatus="Failed"')
                    runs = [(execution.id, execution.run_id) async for execution in failed]
                    await _bare_resets(client, runs, concurrency)
                    replay_s = time.perf_counter() - started
                    started_runs = len(runs)
                else:
                    body = {"filter": {"type": "demo"}, "max": jobs, "rate": rate}
                    first, second = await asyncio.gather(
                        http.post("/v1/replays", json=body), http.post("/v1/replays", json=body)
                    )
                    ids = [first.json()["id"], second.json()["id"]]
                    await _all_taken(http, ids)
                    replay_s = time.perf_counter() - started
                    reports = await _ended(http, ids)
                    ended_s = time.perf_counter() - started
                    print(f"redrive: campaigns ended (replaced runs deleted) after {ended_s:.1f} s")
                    started_runs = _runs_started(reports)
                await _wait_for(client, f'TaskQueue="{queue}" AND ExecutionStatus="Completed"', jobs)
                done_s = time.perf_counter() - started
                print(
                    f"{side}: replay calls {replay_s:.1f} s ({jobs / replay_s:.1f}/s), all {jobs} complete "
                    f"after {done_s:.1f} s, runs started {started_runs}",
                    flush=True,
                )
                if side == "bare":
                    bare_rate = jobs / replay_s
                else:
                    pending = (await http.get("/v1/dead-letters", params={"pending": True})).json()
                    print(f"redrive: pending dead letters left {len(pending['items'])}")
                    ratio = jobs / replay_s / bare_rate
                    verdict = "met" if ratio >= GOAL and started_runs == jobs else "NOT met"
                    print(
                        f"ratio: redrive campaigns at {ratio:.2f} of bare resets' rate (goal {GOAL}, "
                        f"{verdict}; rate limit {rate}/s, bare concurrency {concurrency})"
                    )


async def _campaigns(http: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    return [(await http.get(f"/v1/replays/{campaign_id}")).json() for campaign_id in ids]


async def _all_taken(http: httpx.AsyncClient, ids: list[str]) -> None:
    """Until every campaign has taken every entry it set out to (each replayed or found replayed)."""
    while True:
        reports = await _campaigns(http, ids)
        # `matched` is 0 until a worker has picked the campaign up and counted its entries.
        if all(r.get("matched") and (r["taken"] >= r["taking"] or r["state"] != "running") for r in reports):
            return
        await asyncio.sleep(POLL)


async def _ended(http: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    while True:
        reports = await _campaigns(http, ids)
        if all(r.get("workflow_status") == "COMPLETED" for r in reports):
            return reports
        await asyncio.sleep(0.2)


def _runs_started(reports: list[dict[str, Any]]) -> int:
    replays = int(sum(r["replayed"] + r["resubmitted"] for r in reports))
    skipped = sum(r["skipped"] for r in reports)
    failed = sum(r["failed"] for r in reports)
    print(f"redrive: racing pair replayed {replays} entries between them, skipped {skipped}, failed {failed}")
    return replays


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0)
    # As many resets in flight as a campaign may have: two steps of CONCURRENCY each.
    parser.add_argument("--concurrency", type=int, default=STEPS_IN_FLIGHT * CONCURRENCY)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the projection on PostgreSQL (REDRIVE_TEST_POSTGRES), as deployed",
    )
    arguments = parser.parse_args()
    # Every dead job logs its failed activity with a traceback; a thousand of them bury the figures.
    logging.getLogger("temporalio").setLevel(logging.CRITICAL)
    asyncio.run(main(arguments.jobs, arguments.rate, arguments.concurrency, arguments.postgres))

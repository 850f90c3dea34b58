"""Bulk replay: N dead letters drained by two identical replay campaigns (`POST /v1/replays`)
racing each other, against the same N resets done by hand with the Temporal client (fetch the
history, find the failed stage's reset point, reset) on another N dead jobs, on one dev server per
round.

    python -m bench.bulk_replay [--jobs 500] [--rounds 3] [--rate 1000] [--concurrency 128] [--postgres]

Bare resets run as many at once as the racing pair may (`IN_FLIGHT` each); each bare reset reads
the run's history for its reset point, as a reset done by hand must, where redrive resets to the
point the dead run recorded with its entry. Each round starts a fresh
server and runs the two sides one after the other, bare first in odd rounds and redrive first in
even ones (the second finds the server's database fuller). It prints how long each side took to
replay everything (bare: until the last reset call returned; redrive: until the last step of either
campaign completed, by the server's clock in the campaigns' histories, and apart from that when
the benchmark's polling saw it; their clean-up of replaced runs is timed apart), the replays the
racing pair made between them (the goal is exactly N, not 2N), that every job completed and the
queue is empty, each round's ratio of replays per second and their median (goal: at least 0.9 of
bare resets').
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from bench.scratch import scratch_home
from redrive.contracts import REPLAY_CAMPAIGN_ENTRIES
from redrive.operations import reset_point
from redrive.operations.campaign_steps import IN_FLIGHT
from redrive.settings import Settings
from redrive.store import upgrade
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


@dataclass
class Side:
    """What one side did in a round: replays per second, and whether each entry was replayed once
    with every job complete and nothing left pending."""

    rate: float
    exact: bool


async def main(jobs: int, rate: float, concurrency: int, rounds: int, postgres: bool = False) -> None:
    """`rounds` rounds on a fresh server each, the two sides' order alternating (the side that
    runs second finds the server's database fuller); print each round's figures and the median."""
    ratios: list[float] = []
    exact = True
    for number in range(rounds):
        order = ("bare", "redrive") if number % 2 == 0 else ("redrive", "bare")
        print(f"round {number + 1} of {rounds}: {' then '.join(order)}", flush=True)
        sides = await _round(order, jobs, rate, concurrency, postgres)
        ratio = sides["redrive"].rate / sides["bare"].rate
        ratios.append(ratio)
        exact = exact and sides["redrive"].exact and sides["bare"].exact
        print(f"round {number + 1}: redrive at {ratio:.2f} of bare resets' rate", flush=True)
    median = statistics.median(ratios)
    verdict = "met" if median >= GOAL and exact else "NOT met"
    print(
        f"ratio: redrive campaigns at {median:.2f} of bare resets' rate, median of {rounds} rounds "
        f"({', '.join(f'{r:.2f}' for r in ratios)}); goal {GOAL} with each entry replayed once, "
        f"{verdict} (rate limit {rate}/s, bare concurrency {concurrency})"
    )


async def _round(
    order: tuple[str, ...], jobs: int, rate: float, concurrency: int, postgres: bool
) -> dict[str, Side]:
    with scratch_home("redrive-bench-replay-") as home:
        env = await start_dev_server(home / "temporal.db")
        sides: dict[str, Side] = {}
        async with env, contextlib.AsyncExitStack() as stack:
            for side in order:
                database = await stack.enter_async_context(_database(home, side, postgres))
                settings = settings_for(database, home)
                sides[side] = await _side(env.client, settings, home, side, jobs, rate, concurrency)
    return sides


async def _side(
    client: Client, settings: Settings, home: Path, side: str, jobs: int, rate: float, concurrency: int
) -> Side:
    """`jobs` dead letters, then every one replayed: by bare resets, or by two racing campaigns."""
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
        started = time.time()
        pending = 0
        if side == "bare":
            failed = client.list_workflows(f'TaskQueue="{queue}" AND ExecutionStatus="Failed"')
            runs = [(execution.id, execution.run_id) async for execution in failed]
            await _bare_resets(client, runs, concurrency)
            replay_s = time.time() - started
            started_runs = len(runs)
        else:
            body = {"filter": {"type": "demo"}, "max": jobs, "rate": rate}
            first, second = await asyncio.gather(
                http.post("/v1/replays", json=body), http.post("/v1/replays", json=body)
            )
            ids = [first.json()["id"], second.json()["id"]]
            await _all_taken(http, ids)
            polled_s = time.time() - started
            reports = await _ended(http, ids)
            ended_s = time.time() - started
            replay_s = max([await _last_step_done(client, i) for i in ids]) - started
            print(
                f"redrive: every entry taken after {replay_s:.1f} s (seen by polling after "
                f"{polled_s:.1f} s); campaigns ended (replaced runs deleted) after {ended_s:.1f} s"
            )
            started_runs = _runs_started(reports)
            left = (await http.get("/v1/dead-letters", params={"pending": True})).json()
            pending = len(left["items"])
            print(f"redrive: pending dead letters left {pending}")
        await _wait_for(client, f'TaskQueue="{queue}" AND ExecutionStatus="Completed"', jobs)
        done_s = time.time() - started
        print(
            f"{side}: replay calls {replay_s:.1f} s ({jobs / replay_s:.1f}/s), all {jobs} complete "
            f"after {done_s:.1f} s, runs started {started_runs}",
            flush=True,
        )
    return Side(rate=jobs / replay_s, exact=started_runs == jobs and pending == 0)


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


async def _last_step_done(client: Client, campaign_id: str) -> float:
    """When the campaign's last replay step completed (epoch seconds, the server's clock)."""
    steps: set[int] = set()
    last = 0.0
    async for event in client.get_workflow_handle(campaign_id).fetch_history_events():
        scheduled = event.activity_task_scheduled_event_attributes
        completed = event.activity_task_completed_event_attributes
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if scheduled.activity_type.name == REPLAY_CAMPAIGN_ENTRIES:
                steps.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and (
            completed.scheduled_event_id in steps
        ):
            last = max(last, event.event_time.ToNanoseconds() / 1e9)
    return last


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
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="each on a fresh server, the order alternating")
    parser.add_argument("--rate", type=float, default=1000.0)
    # As many resets in flight as the racing pair may have: IN_FLIGHT each.
    parser.add_argument("--concurrency", type=int, default=2 * IN_FLIGHT)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the projection on PostgreSQL (REDRIVE_TEST_POSTGRES), as deployed",
    )
    arguments = parser.parse_args()
    # Every dead job logs its failed activity with a traceback; a thousand of them bury the figures.
    logging.getLogger("temporalio").setLevel(logging.CRITICAL)
    asyncio.run(
        main(arguments.jobs, arguments.rate, arguments.concurrency, arguments.rounds, arguments.postgres)
    )

"""A downstream outage with and without a circuit breaker: N `webhook` jobs (3 retries 1 s apart)
against a local downstream that answers 503 to everything for `--outage` seconds, then 200.

    python -m bench.breaker [--jobs 50] [--outage 60]

Each side has its own downstream, whose outage starts as its jobs are submitted, and its own task
queue and database on one dev server. Without a breaker it prints how many jobs dead-letter and how
many requests reach the downstream during the outage; with the breaker on `webhook.deliver` (5
failed attempts of at least half in a minute open it; cool-down 10 s, then 20 s; 20 jobs a second
released on close) it checks the goals: no dead letter, every job complete within 30 s of the
recovery, and no more requests during the outage than the probes plus one per job.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from temporalio.client import Client

from bench.scratch import scratch_home
from redrive.breaker_policy import BreakerRef
from redrive.contracts import HALF_OPEN_BREAKER
from redrive.store import upgrade
from tests.support import running_api, running_worker, serving, settings_for, start_dev_server

KEY = {"Authorization": "Bearer key-a"}
RETRIES = """
[job_types.webhook]
initial_interval = "1s"
backoff_coefficient = 1
max_retries = 3
"""
BREAKER = """
[job_types.webhook.stages.deliver.breaker]
window = "1m"
min_failures = 5
failure_rate = 0.5
cool_down = "10s"
max_cool_down = "20s"
resume_rate = 20.0
"""
RECOVERED_WITHIN = 30.0


@dataclass
class Downstream:
    """Answers 503 until `recovers_at` (monotonic seconds), 200 after; counts each job's requests."""

    outage: float
    recovers_at: float = float("inf")
    recovers_wall: float = float("inf")
    during: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)

    def start(self) -> None:
        self.recovers_at = time.monotonic() + self.outage
        self.recovers_wall = time.time() + self.outage

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook/{job}")
        async def hook(job: str, _request: Request) -> Response:
            if time.monotonic() < self.recovers_at:
                self.during[job] += 1
                return Response(status_code=503)
            self.after[job] += 1
            return Response(status_code=200)

        return app


@dataclass(frozen=True)
class Outcome:
    """One side's figures."""

    dead: int
    complete: int
    requests_during: int
    most_by_one_job: int
    last_done_after_recovery: float
    probes: int
    closed_after_recovery: float | None


async def _side(client: Client, home: Path, jobs: int, outage: float, breaker: bool) -> Outcome:
    name = "breaker" if breaker else "bare"
    config = home / f"{name}.toml"
    config.write_text(RETRIES + (BREAKER if breaker else ""))
    url = f"sqlite+aiosqlite:///{home / f'{name}.db'}"
    await upgrade(url)
    settings = settings_for(url, home, config=config)
    downstream = Downstream(outage)
    async with (
        serving(downstream.app()) as hook_url,
        running_worker(client, settings),
        running_api(settings, client) as api,
        httpx.AsyncClient(base_url=api, headers=KEY, timeout=60) as http,
    ):
        downstream.start()
        ids = []
        for n in range(jobs):
            body = {"type": "webhook", "payload": {"url": f"{hook_url}/hook/{n}", "method": "POST"}}
            created = await http.post("/v1/jobs", json=body)
            created.raise_for_status()
            ids.append(created.json()["id"])
        finished = await _until_finished(http, ids)
        done_at = max(finished.values())
        probes = await _probes(client, settings.task_queue) if breaker else 0
        closed_after = None
        if breaker:
            since = (await http.get("/v1/breakers/webhook/deliver")).json()["since"]
            closed_after = datetime.fromisoformat(since).timestamp() - downstream.recovers_wall
    statuses = Counter(status for status, _ in finished.values())
    return Outcome(
        dead=statuses["dead_letter"],
        complete=statuses["complete"],
        requests_during=sum(downstream.during.values()),
        most_by_one_job=max(downstream.during.values(), default=0),
        last_done_after_recovery=done_at[1] - downstream.recovers_at,
        probes=probes,
        closed_after_recovery=closed_after,
    )


async def _until_finished(http: httpx.AsyncClient, ids: Iterable[str]) -> dict[str, tuple[str, float]]:
    """Each job's final status and when it was first seen in it (monotonic seconds)."""
    finished: dict[str, tuple[str, float]] = {}
    waiting = set(ids)
    while waiting:
        for job_id in list(waiting):
            status = (await http.get(f"/v1/jobs/{job_id}")).json()["status"]
            if status in ("complete", "dead_letter"):
                finished[job_id] = (status, time.monotonic())
                waiting.discard(job_id)
        await asyncio.sleep(0.2)
    return finished


async def _probes(client: Client, task_queue: str) -> int:
    """How many times the breaker half-opened (each lets one probe through), over its runs."""
    workflow_id = BreakerRef("webhook", "deliver").workflow_id(task_queue)
    count = 0
    async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            scheduled = event.activity_task_scheduled_event_attributes
            if event.HasField("activity_task_scheduled_event_attributes"):
                count += scheduled.activity_type.name == HALF_OPEN_BREAKER
    return count


async def main(jobs: int, outage: float) -> None:
    with scratch_home("redrive-bench-breaker-") as home:
        env = await start_dev_server(home / "temporal.db")
        async with env:
            print(
                f"{jobs} webhook jobs (3 retries 1 s apart), downstream down for {outage:.0f} s", flush=True
            )
            bare = await _side(env.client, home, jobs, outage, breaker=False)
            print(
                f"without a breaker: {bare.dead} dead letters, {bare.complete} complete; "
                f"{bare.requests_during} requests during the outage "
                f"(up to {bare.most_by_one_job} by one job)",
                flush=True,
            )
            held = await _side(env.client, home, jobs, outage, breaker=True)
            print(
                f"with the breaker:  {held.dead} dead letters, {held.complete} complete, the last "
                f"{held.last_done_after_recovery:.1f} s after the recovery; {held.requests_during} requests "
                f"during the outage ({held.probes} probes, up to {held.most_by_one_job} by one job); "
                f"it closed {held.closed_after_recovery or 0:.1f} s after the recovery"
            )
    allowed = held.probes + jobs
    goals: list[tuple[str, bool]] = [
        (f"no dead letter ({held.dead})", held.dead == 0),
        (
            f"every job complete within {RECOVERED_WITHIN:.0f} s of the recovery "
            f"({held.last_done_after_recovery:.1f} s)",
            held.complete == jobs and held.last_done_after_recovery <= RECOVERED_WITHIN,
        ),
        (
            f"requests during the outage at most probes + one per job ({held.requests_during} ≤ {allowed})",
            held.requests_during <= allowed,
        ),
    ]
    for goal, met in goals:
        print(f"goal {'met' if met else 'NOT met'}: {goal}")


def _arguments() -> Any:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the downstream answers 503")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)  # the bare side's 50 dead letters each log an error
    arguments = _arguments()
    asyncio.run(main(arguments.jobs, arguments.outage))

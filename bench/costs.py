"""Where a redrive job's extra CPU goes, part by part, each measured in this process's CPU time
(not wall clock) so the shared machine's noise moves it less than bench.throughput's rates:

    python -m bench.costs [--jobs 400] [--repeats 3]

- submission: the bare+status side's `start_workflow` call, the same call behind a FastAPI route
  that does nothing else (the framework's and HTTP's floor), and POST /v1/jobs through redrive's
  API (auth, validation, the start with its search attributes, the batched SQL insert); nobody
  polls their task queues, so only submission is timed;
- stages: the three demo stages as redrive runs them (the handler, the SQL projection of each
  stage's start and finish on SQLite) against the bare no-op activity, in an ActivityEnvironment;
- workflow: replaying N copies of a recorded three-stage JobWorkflow history against N copies of
  a bare+status one (the sandbox, activations and payload conversion, without the server).

One bare round of bench.throughput prints a whole bare job's CPU (here + server) to weigh the
additions against: a 0.9 ratio leaves a tenth of it for everything redrive adds, the server's
search-attribute upserts (bench.throughput's ceiling) included.

These are the parts alone, in an otherwise idle process. Inside a loaded worker the same parts
cost more: switching the projection writes or the HTTP API off in bench.throughput's redrive
rounds saved about twice what is printed here (the writer's database thread and the API's
requests compete with the workflows for the GIL and the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from fastapi import FastAPI
from temporalio.client import Client, WorkflowHistory
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer, Worker

from bench import bare_workflows
from bench.bare import JOB_STATUS, STAGES, bare_stage
from bench.bare_workflows.status import BareStatusWorkflow
from bench.scratch import scratch_home
from bench.throughput import _bounded, bare_round, find_server_pid, fresh_database, measuring
from redrive import worker as redrive_worker
from redrive.activities.stages import StageActivities
from redrive.contracts import StageInput
from redrive.converter import DATA_CONVERTER
from redrive.jobtypes import load_job_types, stage_handlers
from redrive.jobtypes.builtin import DEMO
from redrive.workflows import JobWorkflow
from tests.support import running_api, serving, settings_for, start_dev_server

RECORDED_JOB = Path(__file__).parent.parent / "tests" / "histories" / "complete.json"
QUEUED = TypedSearchAttributes([SearchAttributePair(JOB_STATUS, "queued")])

Costs = dict[str, float]


async def cpu_ms_per_job(jobs: int, one: Callable[[int], Awaitable[None]], concurrency: int = 20) -> float:
    """CPU milliseconds this process spends per call of `one`, `concurrency` calls at a time."""
    started = time.process_time()
    await _bounded(jobs, concurrency, one)
    return (time.process_time() - started) * 1000 / jobs


def _floor_app(client: Client, task_queue: str) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/jobs", status_code=202)
    async def submit(body: dict[str, Any]) -> dict[str, str]:
        job_id = f"floor-{uuid.uuid4().hex}"
        await client.start_workflow(
            BareStatusWorkflow.run, {}, id=job_id, task_queue=task_queue, search_attributes=QUEUED
        )
        return {"id": job_id}

    return app


def _poster(http: aiohttp.ClientSession) -> Callable[[int], Awaitable[None]]:
    async def post(_: int) -> None:
        async with http.post("/v1/jobs", json={"type": "demo", "payload": {}}) as response:
            response.raise_for_status()
            await response.read()

    return post


async def submission_costs(client: Client, home: Path, jobs: int) -> Costs:
    """Per submission: a bare start, a start behind a minimal FastAPI route, redrive's API."""
    database = await fresh_database(home)
    settings = settings_for(database, home)
    idle_queue = f"unpolled-{uuid.uuid4().hex[:8]}"

    async def start(_: int) -> None:
        await client.start_workflow(
            BareStatusWorkflow.run,
            {},
            id=f"bare-{uuid.uuid4().hex}",
            task_queue=idle_queue,
            search_attributes=QUEUED,
        )

    costs = {"bare start_workflow": await cpu_ms_per_job(jobs, start)}
    headers = {"Authorization": "Bearer key-a"}
    async with serving(_floor_app(client, idle_queue)) as url, aiohttp.ClientSession(url) as http:
        costs["FastAPI route + start"] = await cpu_ms_per_job(jobs, _poster(http))
    async with (
        running_api(settings, client) as url,
        aiohttp.ClientSession(url, headers=headers) as http,
    ):
        costs["redrive API"] = await cpu_ms_per_job(jobs, _poster(http))
    return costs


async def stage_costs(home: Path, jobs: int) -> Costs:
    """Per job: three bare no-op activities, three redrive stages projecting into SQLite."""
    database = await fresh_database(home)
    environment = ActivityEnvironment()

    async def bare(_: int) -> None:
        for stage in STAGES:
            await environment.run(bare_stage, stage)

    costs = {"3 bare activities": await cpu_ms_per_job(jobs, bare)}
    handlers = stage_handlers(load_job_types())  # resolved once, as the worker does at start-up
    async with redrive_worker.activity_deps(settings_for(database, home)) as deps:
        stages = StageActivities(deps)

        async def ours(_: int) -> None:
            job_id, outputs = f"job-{uuid.uuid4().hex}", dict[str, Any]()
            for position, spec in enumerate(DEMO.stages):
                stage_input = StageInput(
                    job_id=job_id,
                    tenant_id="a",
                    job_type=DEMO.name,
                    payload={},
                    stage=spec,
                    position=position,
                    outputs=dict(outputs),
                    last=position == len(DEMO.stages) - 1,
                )
                result = await environment.run(stages.run, handlers[spec.activity], stage_input)
                outputs[spec.name] = result.output

        costs["3 redrive stages"] = await cpu_ms_per_job(jobs, ours)
    return costs


async def bare_history(client: Client) -> WorkflowHistory:
    """The history of one bare+status workflow run on the server."""
    task_queue = f"bare-history-{uuid.uuid4().hex[:8]}"
    workflows, activities = [BareStatusWorkflow], [bare_stage]
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        workflow_runner=redrive_worker.workflow_runner(),
    ):
        handle = await client.start_workflow(
            BareStatusWorkflow.run, {}, id=task_queue, task_queue=task_queue, search_attributes=QUEUED
        )
        await handle.result()
    return await handle.fetch_history()


async def replay_ms_per_job(workflow: type, history: WorkflowHistory, jobs: int) -> float:
    """CPU milliseconds to replay `jobs` copies of `history`, each its own run in the sandbox."""
    replayer = Replayer(
        workflows=[workflow], data_converter=DATA_CONVERTER, workflow_runner=redrive_worker.workflow_runner()
    )

    async def copies() -> AsyncIterator[WorkflowHistory]:
        for number in range(jobs):
            yield dataclasses.replace(history, workflow_id=f"{history.workflow_id}-{number}")

    started = time.process_time()
    async with replayer.workflow_replay_iterator(copies()) as results:
        async for result in results:
            if result.replay_failure is not None:
                raise result.replay_failure
    return (time.process_time() - started) * 1000 / jobs


async def workflow_costs(bare: WorkflowHistory, jobs: int) -> Costs:
    """Per job: replaying the bare+status workflow, replaying JobWorkflow."""
    ours = WorkflowHistory.from_json("job", RECORDED_JOB.read_text())
    return {
        "bare+status workflow": await replay_ms_per_job(BareStatusWorkflow, bare, jobs),
        "JobWorkflow": await replay_ms_per_job(JobWorkflow, ours, jobs),
    }


async def main(jobs: int, repeats: int) -> None:
    """Measure each part `repeats` times on one dev server; print medians and the bare reference."""
    redrive_worker.precompile_workflows(bare_workflows)
    redrive_worker.precompile_workflows()
    with scratch_home("redrive-costs-") as home:
        env = await start_dev_server(home / "temporal.db")
        samples: dict[str, dict[str, list[float]]] = {"submission": {}, "stages": {}, "workflow": {}}
        async with env:
            history = await bare_history(env.client)
            for _ in range(repeats):
                parts = {
                    "submission": await submission_costs(env.client, home, jobs),
                    "stages": await stage_costs(home, jobs),
                    "workflow": await workflow_costs(history, jobs),
                }
                for part, costs in parts.items():
                    for name, value in costs.items():
                        samples[part].setdefault(name, []).append(value)
            measure = measuring(jobs, find_server_pid(home / "temporal.db"))
            reference = await bare_round(env.client, home, jobs, 20, measure, apart=False)
    whole = reference.local_cpu_ms + reference.server_cpu_ms
    print(f"CPU per job in this process, medians of {repeats} repeats of {jobs} jobs:")
    added = 0.0
    for part, by_name in samples.items():
        medians = {name: statistics.median(values) for name, values in by_name.items()}
        names = list(medians)
        extra = medians[names[-1]] - medians[names[0]]
        added += extra
        shown = " | ".join(f"{name} {value:.2f} ms" for name, value in medians.items())
        print(f"  {part:<10} {shown}  -> redrive adds {extra:+.2f} ms ({extra / whole:+.1%})")
    print(
        f"  a whole bare job (one bench.throughput round): {whole:.1f} ms "
        f"({reference.local_cpu_ms:.1f} here + {reference.server_cpu_ms:.1f} server)"
    )
    print(
        f"  redrive's additions in these parts: {added:+.2f} ms = {added / whole:.1%} of a bare job; "
        f"a 0.9 ratio allows {whole / 9:.1f} ms in all, the ceiling's search-attribute upserts included"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.repeats))

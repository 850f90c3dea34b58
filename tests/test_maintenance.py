"""Dead-letter maintenance: archive and purge with an injected clock (on SQLite and PostgreSQL), the
read paths' archived view before maintenance has run, and reconcile of terminated and timed-out runs
through the real schedule on the dev server."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from redrive.activities import ActivityDeps
from redrive.activities.maintenance import MaintenanceActivities
from redrive.contracts import MaintenanceInput
from redrive.store import DeadLetter, Job, create_engine, session_factory
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.projection import GroupCommit
from redrive.store.tenancy import ALL_TENANTS
from redrive.store.types import utcnow
from tests.support import Mailbox, api_client, dead_runs, eventually, job_in, last_pass, serving, settings_for

A = {"Authorization": "Bearer key-a"}
RETRY = importlib.import_module("redrive.operations.retry")  # the package exports a function of that name
PASS = MaintenanceInput(
    task_queue="unused",
    archive_after=timedelta(days=7),
    purge_replayed_after=timedelta(days=30),
    reconcile_lookback=timedelta(days=2),
)


def _dead(job_id: str, at: datetime, replayed_at: datetime | None = None) -> tuple[Job, DeadLetter]:
    run_id = f"{job_id}-run"
    job = Job(
        id=job_id,
        tenant_id="a",
        type="demo",
        status="dead_letter",
        run_id=run_id,
        stage="process",
        created_at=at,
        updated_at=at,
        finished_at=at,
    )
    entry = DeadLetter(
        original_job_id=job_id,
        run_id=run_id,
        app_id="a",
        type="demo",
        stage="process",
        error_reason="MaxRetries",
        error_type="TemporaryFailure",
        error_message="down",
        attempts=4,
        dlq_at=at,
        replayed_at=replayed_at,
    )
    return job, entry


async def test_archive_and_purge_by_age(database_url: str) -> None:
    """With the clock 8 days on, the week-old dead letter and its job are archived, once; 31 days on,
    the entry replayed a month earlier is purged; younger entries are left alone."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    now = utcnow()
    rows = [
        _dead("old", now),
        _dead("young", now + timedelta(days=5)),
        _dead("replayed", now, replayed_at=now),
        _dead("recent-replay", now, replayed_at=now + timedelta(days=20)),
    ]
    try:
        async with sessions() as session, session.begin():
            for job, entry in rows:
                session.add(job)
                await DeadLetterRepository(session).insert(entry)
        async with httpx.AsyncClient() as http, GroupCommit(engine) as projection:

            def at(days: int) -> MaintenanceActivities:
                clock = now + timedelta(days=days)
                deps = ActivityDeps(sessions=sessions, projection=projection, http=http, now=lambda: clock)
                return MaintenanceActivities(deps)

            env = ActivityEnvironment()
            assert await env.run(at(8).archive_dead_letters, PASS) == 1
            assert await env.run(at(8).archive_dead_letters, PASS) == 0
            assert await env.run(at(31).purge_replayed, PASS) == 1
        async with sessions() as session:
            jobs = {job.id: job.status for job in (await session.exec(select(Job))).all()}
            entries = await DeadLetterRepository(session).search_any(DeadLetterFilter(ALL_TENANTS), 10)
        assert jobs == {
            "old": "archived",
            "young": "dead_letter",
            "replayed": "dead_letter",
            "recent-replay": "dead_letter",
        }
        assert {e.original_job_id: e.archived_at is not None for e in entries} == {
            "old": True,
            "young": False,
            "recent-replay": False,
        }
    finally:
        await engine.dispose()


@pytest.fixture
async def quick_archive(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """API and worker where dead letters count as archived after 2 seconds."""
    settings = settings_for(sqlite_url, tmp_path, archive_after=timedelta(seconds=2))
    async with api_client(dev_env.client, settings, A) as http:
        yield http


async def test_old_dead_letters_read_as_archived_before_maintenance(
    quick_archive: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Past the archive age every read path says archived, though no maintenance ran; it still retries."""
    http = quick_archive
    breaker = tmp_path / "break"
    breaker.touch()
    fail = {"stage": "process", "error": "ValidationError", "while_exists": str(breaker)}
    job_id = (await http.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})).json()["id"]

    async def shown_as(wanted: str) -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
        return body if body["status"] == wanted else None

    await eventually(lambda: shown_as("dead_letter"))
    await eventually(lambda: shown_as("archived"), within=10)
    listed = (await http.get("/v1/jobs", params={"status": "archived"})).json()
    assert [item["id"] for item in listed["items"]] == [job_id]
    assert listed["counts"] == {"archived": 1}
    assert (await http.get("/v1/jobs", params={"status": "dead_letter"})).json()["items"] == []
    (entry,) = (await http.get("/v1/dead-letters")).json()["items"]
    assert entry["state"] == "archived"
    breaker.unlink()
    assert (await http.post(f"/v1/jobs/{job_id}/retry")).status_code == 200
    await eventually(lambda: shown_as("complete"), within=30)


@pytest.fixture
async def reconciling(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[httpx.AsyncClient]:
    """API and worker with alerts on, where a webhook job may run for 3 seconds at most."""
    config = tmp_path / "redrive.toml"
    config.write_text('[job_types.webhook]\nexecution_timeout = "3s"\n')
    settings = settings_for(sqlite_url, tmp_path, config=config, **mailbox.settings())
    async with api_client(dev_env.client, settings, A) as http:
        yield http


async def test_reconcile_records_terminated_and_timed_out_runs(
    reconciling: httpx.AsyncClient, dev_env: WorkflowEnvironment, mailbox: Mailbox
) -> None:
    """Runs closed by a terminate or a timeout reach the DLQ, the job table and an e-mail when the
    maintenance schedule runs; a second pass records nothing twice."""
    http = reconciling
    slow = FastAPI()

    @slow.post("/hook")
    async def hook() -> Response:
        await asyncio.sleep(6)
        return Response(status_code=204)

    async with serving(slow) as slow_url:
        webhook = {"type": "webhook", "payload": {"url": f"{slow_url}/hook"}}
        timed_out = (await http.post("/v1/jobs", json=webhook)).json()["id"]
        stuck = (await http.post("/v1/jobs", json={"type": "demo", "payload": {"sleep_ms": 4_000}})).json()[
            "id"
        ]
        await eventually(lambda: _in_stage(http, stuck, "process"), within=15)
        await dev_env.client.get_workflow_handle(stuck).terminate(reason="host lost")
        await eventually(lambda: _closed_as(dev_env, timed_out, WorkflowExecutionStatus.TIMED_OUT), within=20)
        await eventually(lambda: _closed_as(dev_env, stuck, WorkflowExecutionStatus.TERMINATED))

        schedule = dev_env.client.get_schedule_handle(f"redrive-maintenance-{http.headers['X-Task-Queue']}")
        await schedule.trigger()
        entries = await eventually(lambda: _entries(http, 2), within=30)
    by_job = {entry["original_job_id"]: entry for entry in entries}
    assert (by_job[stuck]["error_reason"], by_job[stuck]["stage"]) == ("Terminated", "process")
    assert "host lost" in by_job[stuck]["error_message"]
    assert (by_job[timed_out]["error_reason"], by_job[timed_out]["stage"]) == ("Timeout", "deliver")
    for job_id, reason in ((stuck, "Terminated"), (timed_out, "Timeout")):
        job = (await http.get(f"/v1/jobs/{job_id}")).json()
        assert (job["status"], job["error_reason"]) == ("dead_letter", reason)
        assert any(job_id in str(message["Subject"]) for message in mailbox.messages)
    # Closed runs keep the search attributes they had (Temporal cannot upsert a closed run); the UI
    # finds these by ExecutionStatus instead.
    queue = http.headers["X-Task-Queue"]
    closed = f'TaskQueue="{queue}" AND (ExecutionStatus="Terminated" OR ExecutionStatus="TimedOut")'
    assert {execution.id async for execution in dev_env.client.list_workflows(closed)} == {stuck, timed_out}
    await schedule.trigger()
    await asyncio.sleep(2)
    assert len(await _entries(http, 2) or []) == 2


async def _in_stage(http: httpx.AsyncClient, job_id: str, stage: str) -> bool:
    job = (await http.get(f"/v1/jobs/{job_id}")).json()
    return bool(job["status"] == "running" and job["stage"] == stage)


async def _closed_as(env: WorkflowEnvironment, job_id: str, status: WorkflowExecutionStatus) -> bool:
    return (await env.client.get_workflow_handle(job_id).describe()).status == status


async def _entries(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = (await http.get("/v1/dead-letters")).json()["items"]
    return items if len(items) >= count else None


async def test_a_pass_deletes_the_dead_run_a_retry_reset_but_did_not_forget(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry whose process dies between its reset and asking for the dead run's deletion (its
    `forget` call, skipped here) leaves the old run listed as dead in Temporal; the next maintenance
    pass has it deleted, and leaves the run of a job that is still dead alone."""

    async def died_before_forgetting(*_: object, **__: object) -> None:
        return None

    monkeypatch.setattr(RETRY, "forget", died_before_forgetting)
    config = tmp_path / "redrive.toml"
    config.write_text('[job_types.demo]\ninitial_interval = "1s"\nbackoff_coefficient = 1\n')
    settings = settings_for(sqlite_url, tmp_path, config=config)
    breaker = tmp_path / "break-process"
    breaker.touch()
    fail = {"stage": "process", "error": "ServiceUnavailable", "while_exists": str(breaker)}
    async with api_client(dev_env.client, settings, A) as http:
        retried, still_dead = [
            (await http.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})).json()["id"]
            for _ in range(2)
        ]
        runs = {job_id: await _dead_run(http, job_id) for job_id in (retried, still_dead)}
        breaker.unlink()
        retry = await http.post(f"/v1/jobs/{retried}/retry")
        assert retry.json()["mode"] == "reset", retry.text
        await eventually(lambda: job_in(http, retried, "complete"), within=30)
        listed_dead = {(job_id, runs[job_id]) for job_id in (retried, still_dead)}
        assert (
            await eventually(lambda: _listed_dead(dev_env, settings.task_queue, listed_dead)) == listed_dead
        )

        schedule = dev_env.client.get_schedule_handle(f"redrive-maintenance-{settings.task_queue}")
        await schedule.trigger()
        result = await eventually(lambda: last_pass(dev_env.client, schedule), within=30)
        assert result.forgotten == 1
        only_dead = {(still_dead, runs[still_dead])}
        assert await eventually(lambda: _listed_dead(dev_env, settings.task_queue, only_dead), within=90)


async def _dead_run(http: httpx.AsyncClient, job_id: str) -> str:
    """The run of `job_id` once it is dead."""
    dead = await eventually(lambda: job_in(http, job_id, "dead_letter"), within=60)
    return str(dead["run_id"])


async def _listed_dead(
    env: WorkflowEnvironment, task_queue: str, expected: set[tuple[str, str]]
) -> set[tuple[str, str]] | None:
    """The runs Temporal lists as dead on `task_queue`, once they are `expected`."""
    listed = await dead_runs(env.client, task_queue)
    return listed if listed == expected else None

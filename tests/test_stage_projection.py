"""How a stage activity projects itself into SQL: a quick attempt writes its start with its outcome
in one write; one that outlasts `START_DELAY` shows `running` while it runs; a quick failure still
leaves the stage's row and the attempt behind. Real activities, real database, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from redrive import worker
from redrive.activities.deps import ActivityDeps
from redrive.activities.handlers.demo import run_stage
from redrive.activities.stages import START_DELAY, StageActivities
from redrive.contracts import StageInput
from redrive.jobtypes.builtin import DEMO
from redrive.store import Job, JobStage, create_engine
from redrive.store.models import StageFailure
from redrive.store.projection import GroupCommit, Write
from tests.support import settings_for


class CountingCommit(GroupCommit):
    """The real group commit, remembering each write it was given."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.writes: list[Write] = []

    async def write(self, write: Write) -> None:
        self.writes.append(write)
        await super().write(write)


@pytest.fixture
async def deps(database_url: str, tmp_path: Path) -> AsyncIterator[ActivityDeps]:
    engine = create_engine(database_url)
    try:
        async with (
            worker.activity_deps(settings_for(database_url, tmp_path)) as real,
            CountingCommit(engine) as counting,
        ):
            yield dataclasses.replace(real, projection=counting)
    finally:
        await engine.dispose()


def _stage_input(job_id: str, payload: dict[str, Any]) -> StageInput:
    return StageInput(
        job_id=job_id,
        tenant_id="a",
        job_type=DEMO.name,
        payload=payload,
        stage=DEMO.stages[0],
        position=0,
        outputs={},
        last=False,
    )


async def _run(deps: ActivityDeps, payload: dict[str, Any]) -> tuple[str, asyncio.Task[Any]]:
    job_id = f"job-{uuid.uuid4().hex}"
    stage_input = _stage_input(job_id, payload)
    run = StageActivities(deps).run
    task = asyncio.ensure_future(ActivityEnvironment().run(run, run_stage, stage_input))
    return job_id, task


async def _rows(deps: ActivityDeps, job_id: str) -> tuple[Job, JobStage]:
    async with deps.sessions() as session:
        job = (await session.exec(select(Job).where(col(Job.id) == job_id))).one()
        stage = (await session.exec(select(JobStage).where(col(JobStage.job_id) == job_id))).one()
        return job, stage


def _writes(deps: ActivityDeps) -> list[Write]:
    assert isinstance(deps.projection, CountingCommit)
    return deps.projection.writes


async def test_quick_stage_writes_start_and_end_at_once(deps: ActivityDeps) -> None:
    job_id, task = await _run(deps, {})
    await task
    assert len(_writes(deps)) == 1
    job, stage = await _rows(deps, job_id)
    assert (job.status, job.stage) == ("running", "prepare")
    assert (stage.status, stage.executions, stage.attempt) == ("complete", 1, 1)
    assert stage.started_at is not None
    assert stage.finished_at is not None
    assert stage.started_at <= stage.finished_at


async def test_slow_stage_shows_running_while_it_runs(deps: ActivityDeps) -> None:
    job_id, task = await _run(deps, {"sleep_ms": int(START_DELAY * 1000) + 600})
    await asyncio.sleep(START_DELAY + 0.3)
    job, stage = await _rows(deps, job_id)
    assert not task.done()
    assert (job.status, job.stage) == ("running", "prepare")
    assert (stage.status, stage.finished_at) == ("running", None)
    await task
    assert len(_writes(deps)) == 2
    _, stage = await _rows(deps, job_id)
    assert (stage.status, stage.executions) == ("complete", 1)
    assert stage.finished_at is not None
    assert stage.started_at is not None
    assert (stage.finished_at - stage.started_at).total_seconds() >= START_DELAY + 0.5


async def test_quick_failure_leaves_its_stage_and_attempt(deps: ActivityDeps) -> None:
    failing = {"fail": {"stage": "prepare", "error": "ServiceUnavailable"}}
    job_id, task = await _run(deps, failing)
    with pytest.raises(ApplicationError, match="ServiceUnavailable"):
        await task
    job, stage = await _rows(deps, job_id)
    assert job.status == "retrying"
    assert job.next_retry_at is not None
    assert (stage.status, stage.executions) == ("retrying", 1)
    async with deps.sessions() as session:
        attempts = (await session.exec(select(StageFailure).where(col(StageFailure.job_id) == job_id))).all()
    assert [(attempt.stage, attempt.attempt, attempt.error_type) for attempt in attempts] == [
        ("prepare", 1, "ServiceUnavailable")
    ]

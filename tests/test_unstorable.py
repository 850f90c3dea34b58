"""A payload the database refuses (one that never went through the API's checks) must not keep its
job from the dead-letter queue: after a few refusals the entry is stored with the payload marked."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from redrive.activities.dead_letters import UNSTORABLE
from redrive.contracts import JobInput
from redrive.jobtypes.builtin import DEMO
from redrive.store.engine import create_engine, session_factory
from redrive.store.models import DeadLetter, Job
from tests.support import running_worker, settings_for


async def test_a_refused_payload_still_reaches_the_dead_letter_queue(
    dev_env: WorkflowEnvironment, postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NaN (which PostgreSQL's JSON refuses) in a payload started behind the API's back, in a job that
    fails at once: it ends `dead_letter`, its entry's payload names why it is not there, and an ERROR
    log says so."""
    settings = settings_for(postgres_url, tmp_path)
    job_id = f"job-{uuid.uuid4().hex}"
    job = JobInput(
        job_id=job_id, tenant_id="a", job_type="demo", payload={"n": float("nan")}, stages=DEMO.plan()
    )
    async with running_worker(dev_env.client, settings):
        handle = await dev_env.client.start_workflow("demo", job, id=job_id, task_queue=settings.task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    engine = create_engine(postgres_url)
    async with session_factory(engine)() as session:
        entry = (await session.exec(select(DeadLetter).where(DeadLetter.original_job_id == job_id))).one()
        row = await session.get(Job, job_id)
    await engine.dispose()
    assert set(entry.payload) == {UNSTORABLE}
    assert (entry.stage, entry.error_type) == ("prepare", "ValidationError")
    assert row is not None
    assert row.status == "dead_letter"
    refused = [r for r in caplog.records if r.levelname == "ERROR" and "refused" in r.getMessage()]
    assert [job_id in r.getMessage() for r in refused] == [True]

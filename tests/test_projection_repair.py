"""The projection converges to Temporal's truth: rows lost to an outage (a job row never written, stage
rows left `running`, a stage row missing) are rewritten from the runs' histories by the maintenance
pass, on SQLite and PostgreSQL, through the real schedule on the dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from redrive.store.engine import create_engine
from redrive.store.models import JOB_STAGES, JOBS
from tests.support import api_client, eventually, one_dead_one_done, settings_for

A = {"Authorization": "Bearer key-a"}
FAST_RETRIES = '[job_types.demo]\ninitial_interval = "1s"\nbackoff_coefficient = 1\n'


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    config = tmp_path / "redrive.toml"
    config.write_text(FAST_RETRIES)
    settings = settings_for(database_url, tmp_path, config=config)
    async with api_client(dev_env.client, settings, A) as http:
        yield http


def _shape(job: dict[str, Any]) -> dict[str, Any]:
    stages = [(stage["name"], stage["status"], stage["attempt"]) for stage in job["stages"]]
    return {"status": job["status"], "stage": job["stage"], "run_id": job["run_id"], "stages": stages}


async def test_lost_writes_are_repaired_from_history(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, database_url: str
) -> None:
    dead, done = await one_dead_one_done(api)
    truth = {job_id: _shape((await api.get(f"/v1/jobs/{job_id}")).json()) for job_id in (dead, done)}
    assert truth[dead]["stages"][-1][1] == "failed"

    engine = create_engine(database_url)
    async with engine.begin() as connection:  # what a database outage leaves behind
        await connection.execute(sa.delete(JOB_STAGES).where(JOB_STAGES.c.job_id == done))
        await connection.execute(sa.delete(JOBS).where(JOBS.c.id == done))
        await connection.execute(
            sa.update(JOB_STAGES)
            .where(JOB_STAGES.c.job_id == dead, JOB_STAGES.c.stage == "prepare")
            .values(status="running", finished_at=None)
        )
        await connection.execute(
            sa.delete(JOB_STAGES).where(JOB_STAGES.c.job_id == dead, JOB_STAGES.c.stage == "process")
        )
    await engine.dispose()
    assert (await api.get(f"/v1/jobs/{done}")).status_code == 404

    schedule = dev_env.client.get_schedule_handle(f"redrive-maintenance-{api.headers['X-Task-Queue']}")
    await schedule.trigger()

    async def repaired() -> bool:
        answers = [await api.get(f"/v1/jobs/{job_id}") for job_id in (dead, done)]
        return (
            all(answer.status_code == 200 for answer in answers)
            and {job_id: _shape(answer.json()) for job_id, answer in zip((dead, done), answers, strict=True)}
            == truth
        )

    await eventually(repaired, within=30)

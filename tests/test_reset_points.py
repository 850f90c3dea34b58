"""The reset point a dead run records with its dead letter is the one its history shows (so a replay
resets without reading the history back), on the dev server with a real worker: after a local
stage, after retries, in a run a retry reset, and in a stage after another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from redrive.operations import reset_point
from redrive.store import create_engine, session_factory
from redrive.store.models import DeadLetter
from tests.support import api_client, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}
CONFIG = """
[job_types.demo]
initial_interval = "100ms"
backoff_coefficient = 1
max_retries = 2

[job_types.demo.stages.prepare]
local = true
"""


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The demo job type with a local first stage and two quick retries; a client as tenant a."""
    config = tmp_path / "redrive.toml"
    config.write_text(CONFIG)
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path, config=config), A) as http:
        yield http


async def _entries(url: str) -> list[DeadLetter]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.exec(select(DeadLetter).order_by(col(DeadLetter.dlq_at)))).all())
    finally:
        await engine.dispose()


async def _submit(http: httpx.AsyncClient, stage: str, error: str, breaker: Path) -> str:
    fail = {"stage": stage, "error": error, "while_exists": str(breaker)}
    created = await http.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    return job_id


async def test_recorded_reset_points_match_the_history(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    breaker = tmp_path / "break"
    breaker.touch()
    failing = {
        "permanent": await _submit(api, "process", "ValidationError", breaker),
        "retried": await _submit(api, "process", "ServiceUnavailable", breaker),
        "last stage": await _submit(api, "finish", "ValidationError", breaker),
        "pointed back": await _submit(api, "finish", "ValidationError", breaker),
    }
    for job_id in failing.values():
        await eventually(partial(job_in, api, job_id, "dead_letter"), within=60)
    # Dead again in the run its retry reset.
    again = await api.post(f"/v1/jobs/{failing['permanent']}/retry")
    assert again.status_code == 200, again.text
    await eventually(lambda: _dead_in(api, failing["permanent"], again.json()["run_id"]), within=60)

    entries = await _entries(sqlite_url)
    assert len(entries) == 5
    for entry in entries:
        from_history = await reset_point(dev_env.client, entry.original_job_id, entry.run_id, entry.stage)
        assert from_history is not None
        assert entry.reset_point == from_history, (entry.original_job_id, entry.stage)
    assert entries[-1].run_id == again.json()["run_id"]

    # A retry resets to the recorded point, without reading the history: pointed at the workflow
    # task that scheduled the stage before, it runs that stage again.
    back = next(entry for entry in entries if entry.original_job_id == failing["pointed back"])
    earlier = await reset_point(dev_env.client, back.original_job_id, back.run_id, "process")
    await _set_point(sqlite_url, back, earlier)

    # The job finishes in the run the reset made, and the one whose last stage failed does not run
    # the stage before it again.
    breaker.unlink()
    for name, job_id in failing.items():
        retried = await api.post(f"/v1/jobs/{job_id}/retry", json={"force": True})
        assert retried.status_code == 200, (name, retried.text)
        assert retried.json()["mode"] == "reset", name
        done = await eventually(partial(job_in, api, job_id, "complete"), within=60)
        assert done["run_id"] == retried.json()["run_id"], name
        executions = {stage["name"]: stage["executions"] for stage in done["stages"]}
        if name == "last stage":
            assert executions == {"prepare": 1, "process": 1, "finish": 2}, executions
        elif name == "pointed back":
            # The stage before it ran in the workflow task that ran the local first stage.
            assert executions == {"prepare": 2, "process": 2, "finish": 2}, executions


async def _set_point(url: str, entry: DeadLetter, point: int | None) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            update = sa.update(DeadLetter).where(col(DeadLetter.id) == entry.id).values(reset_point=point)
            await session.exec(update)
    finally:
        await engine.dispose()


async def _dead_in(http: httpx.AsyncClient, job_id: str, run_id: str) -> bool:
    job = await job_in(http, job_id, "dead_letter")
    return job is not None and job["run_id"] == run_id

"""A dead job whose payload was wrong, retried with a JSON Merge Patch of it: it continues from the
failed stage in a new run with the patched payload, the stages before it not run again (Temporal's
history says so) and their outputs carried over; an invalid patch is a 422 that changes nothing. On
the dev server, through the API over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from redrive.contracts import JobResult
from redrive.operations.patch import merge_patch, patched_fields
from redrive.store.engine import create_engine
from redrive.store.models import JOBS
from tests.support import api_client, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(dev_env.client, settings_for(database_url, tmp_path), A) as http:
        yield http


def test_merge_patch_follows_rfc_7396() -> None:
    """The RFC's own example: objects merge, null removes, arrays and scalars replace."""
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["a", "b"]}
    patch = {"title": "Hello!", "phoneNumber": "+01-123", "author": {"familyName": None}, "tags": ["c"]}
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["c"],
        "phoneNumber": "+01-123",
    }
    assert patched_fields(patch) == [
        "payload.title",
        "payload.phoneNumber",
        "payload.author.familyName",
        "payload.tags",
    ]


async def test_a_patched_retry_continues_from_the_failed_stage(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, database_url: str
) -> None:
    payload = {"sleep_ms": 10, "fail": {"stage": "process", "error": "ValidationError"}}
    job_id = (await api.post("/v1/jobs", json={"type": "demo", "payload": payload})).json()["id"]
    dead = await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)

    refused = await api.post(f"/v1/jobs/{job_id}/retry", json={"payload_patch": {"sleep_ms": -1}})
    assert (refused.status_code, refused.json()["field"]) == (422, "body.payload_patch.sleep_ms")
    unchanged = (await api.get(f"/v1/jobs/{job_id}")).json()
    assert (unchanged["status"], unchanged["run_id"]) == ("dead_letter", dead["run_id"])

    answer = await api.post(
        f"/v1/jobs/{job_id}/retry", json={"payload_patch": {"fail": None}, "reason": "input fixed"}
    )
    assert answer.status_code == 200, answer.text
    retried = answer.json()
    assert (retried["mode"], retried["from_stage"]) == ("continued", "process")
    done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    assert done["run_id"] == retried["run_id"] != dead["run_id"]
    (action,) = done["actions"]
    assert "payload.fail" in action["note"]
    assert "input fixed" in action["note"]

    handle = dev_env.client.get_workflow_handle(job_id, run_id=retried["run_id"], result_type=JobResult)
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_id
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["process", "finish"]  # prepare did not run again
    result = await handle.result()
    assert set(result.outputs) == {"prepare", "process", "finish"}  # prepare's output carried over

    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = (await connection.execute(sa.select(JOBS.c.payload).where(JOBS.c.id == job_id))).scalar_one()
    await engine.dispose()
    assert stored == {"sleep_ms": 10}

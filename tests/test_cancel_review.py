"""Cancel and review over HTTP on the dev server with a real worker: a long stage stops on cancel,
finished jobs refuse it, a review stage waits for a person, and a decision outside review is a 409."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from redrive.status import JOB_STATUS
from tests.support import api_client, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """API and worker on SQLite; an HTTP client as tenant a."""
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path), A) as http:
        yield http


def _waiting_for_review(
    http: httpx.AsyncClient, job_id: str
) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    return lambda: job_in(http, job_id, "pending_review")


async def test_cancel_stops_a_running_stage(api: httpx.AsyncClient, dev_env: WorkflowEnvironment) -> None:
    """A 60 s stage is stopped through its heartbeat; the job is cancelled in SQL and in Temporal."""
    job_id = (await api.post("/v1/jobs", json={"type": "demo", "payload": {"sleep_ms": 60_000}})).json()["id"]
    await eventually(lambda: job_in(api, job_id, "running"))
    assert (await api.post(f"/v1/jobs/{job_id}/cancel", headers=B)).status_code == 404
    cancelled = await api.post(f"/v1/jobs/{job_id}/cancel", json={"reason": "customer withdrew"})
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelling"
    job = await eventually(lambda: job_in(api, job_id, "cancelled"), within=20)
    description = await dev_env.client.get_workflow_handle(job_id).describe()
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert description.typed_search_attributes.get(JOB_STATUS) == "cancelled"
    assert [(s["name"], s["status"]) for s in job["stages"]] == [("prepare", "running")]  # never finished
    assert [(a["action"], a["note"]) for a in job["actions"]] == [("cancel", "customer withdrew")]
    again = await api.post(f"/v1/jobs/{job_id}/cancel")
    assert (again.status_code, again.headers["content-type"]) == (409, "application/problem+json")
    assert "is cancelled" in again.json()["detail"]


async def test_a_finished_job_cannot_be_cancelled(api: httpx.AsyncClient) -> None:
    """Cancel of a complete job is a 409 naming its status."""
    job_id = (await api.post("/v1/jobs", json={"type": "demo", "payload": {}})).json()["id"]
    await eventually(lambda: job_in(api, job_id, "complete"))
    refused = await api.post(f"/v1/jobs/{job_id}/cancel")
    assert refused.status_code == 409
    assert "is complete" in refused.json()["detail"]


async def test_review_approve_and_reject(api: httpx.AsyncClient, dev_env: WorkflowEnvironment) -> None:
    """A review stage parks the job; approve runs the rest, reject dead-letters it as Rejected."""
    approved = (await api.post("/v1/jobs", json={"type": "demo_review", "payload": {}})).json()["id"]
    rejected = (await api.post("/v1/jobs", json={"type": "demo_review", "payload": {}})).json()["id"]
    for job_id in (approved, rejected):
        waiting = await eventually(_waiting_for_review(api, job_id))
        assert waiting["stage"] == "approval"
    attributes = (await dev_env.client.get_workflow_handle(approved).describe()).typed_search_attributes
    assert attributes.get(JOB_STATUS) == "pending_review"

    bad = await api.post(f"/v1/jobs/{approved}/review", json={"decision": "maybe"})
    assert bad.status_code == 422
    assert (
        await api.post(f"/v1/jobs/{approved}/review", json={"decision": "approve"}, headers=B)
    ).status_code == 404
    ok = await api.post(f"/v1/jobs/{approved}/review", json={"decision": "approve", "comment": "looks right"})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["stage"], ok.json()["decision"]) == ("approval", "approve")
    done = await eventually(lambda: job_in(api, approved, "complete"))
    assert done["actions"][0]["note"] == "approve approval: looks right"
    late = await api.post(f"/v1/jobs/{approved}/review", json={"decision": "reject"})
    assert late.status_code == 409
    assert "not waiting for a review" in late.json()["detail"]

    no = await api.post(
        f"/v1/jobs/{rejected}/review", json={"decision": "reject", "comment": "wrong invoice"}
    )
    assert no.status_code == 200, no.text
    dead = await eventually(lambda: job_in(api, rejected, "dead_letter"))
    assert (dead["error_reason"], dead["stage"]) == ("Rejected", "approval")
    (entry,) = [
        e for e in (await api.get("/v1/dead-letters")).json()["items"] if e["original_job_id"] == rejected
    ]
    assert entry["error_reason"] == "Rejected"
    assert "wrong invoice" in entry["error_message"]

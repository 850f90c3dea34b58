"""Helpers for tests on the time-skipping server: the stack, running a job to its end, reading it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from redrive.settings import Settings
from tests.support import Mailbox

A = {"Authorization": "Bearer key-a"}


@dataclass(frozen=True)
class Stack:
    """The real API and worker against the time-skipping server."""

    env: WorkflowEnvironment
    settings: Settings
    url: str
    mailbox: Mailbox


async def run_to_end(
    env: WorkflowEnvironment, api: str, body: dict[str, Any]
) -> tuple[str, BaseException | None]:
    """Submit over HTTP, then let the server skip time until the job's workflow closes."""
    async with httpx.AsyncClient(base_url=api, headers=A) as http:
        created = await http.post("/v1/jobs", json=body)
        assert created.status_code == 202, created.text
        job_id: str = created.json()["id"]
    handle = env.client.get_workflow_handle(job_id)
    # The job was started by the API, so this handle does not skip time by itself: skip it here.
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await env.sleep(timedelta(seconds=15))
    try:
        await handle.result()
    except WorkflowFailureError as failure:
        return job_id, failure.cause
    return job_id, None


async def dead_letter_of(api: str, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api, headers=A) as http:
        entries = (await http.get("/v1/dead-letters")).json()["items"]
    matching: list[dict[str, Any]] = [entry for entry in entries if entry["original_job_id"] == job_id]
    assert len(matching) == 1, entries
    return matching[0]


async def job_of(api: str, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api, headers=A) as http:
        response = await http.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body

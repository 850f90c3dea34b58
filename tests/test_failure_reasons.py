"""Each way a job can fail, on the time-skipping server with the real worker, API and an SMTP server:
the dead-letter row, the job's status, the search attributes and the e-mail that announces it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from redrive.contracts import JobInput
from redrive.jobtypes import load_job_types
from redrive.jobtypes.registry import Stage
from redrive.status import ERROR_REASON, JOB_STAGE, JOB_STATUS
from tests.skipping import A, Stack, dead_letter_of, job_of, run_to_end
from tests.support import Mailbox, eventually, running_api, running_worker, settings_for


async def _assert_announced(stack: Stack, job_id: str, reason: str, stage: str) -> dict[str, Any]:
    """The DLQ row, job row, search attributes and e-mail all say the job died in `stage` for `reason`."""
    entry = await dead_letter_of(stack.url, job_id)
    job = await job_of(stack.url, job_id)
    assert (entry["error_reason"], entry["stage"]) == (reason, stage)
    assert len(entry["error_history"]) == entry["attempts"] >= 1
    assert (job["status"], job["stage"], job["error_reason"]) == ("dead_letter", stage, reason)
    attributes = (await stack.env.client.get_workflow_handle(job_id).describe()).typed_search_attributes
    assert (attributes.get(JOB_STATUS), attributes.get(JOB_STAGE), attributes.get(ERROR_REASON)) == (
        "dead_letter",
        stage,
        reason,
    )
    mail = await eventually(lambda: _mail_about(stack.mailbox, job_id))
    text = mail.get_content()
    for fact in (job_id, entry["type"], stage, reason, entry["error_type"], f"/v1/jobs/{job_id}"):
        assert fact in text, (fact, text)
    assert mail["Message-ID"] == f"<{entry['id']}@redrive>"
    return entry


async def _mail_about(mailbox: Mailbox, job_id: str) -> Any:
    found = [message for message in mailbox.messages if job_id in str(message["Subject"])]
    assert len(found) <= 1, "one dead letter, one e-mail"
    return found[0] if found else None


async def test_max_retries(stack: Stack) -> None:
    """A stage failing on every attempt dead-letters as MaxRetries after 4 attempts, and is announced."""
    fail = {"stage": "process", "error": "ServiceUnavailable"}
    job_id, _ = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {"fail": fail}})
    entry = await _assert_announced(stack, job_id, "MaxRetries", "process")
    assert entry["attempts"] == 4


async def test_validation(stack: Stack) -> None:
    """A permanent error dead-letters as Validation after one attempt, and is announced."""
    fail = {"stage": "prepare", "error": "PermissionDenied"}
    job_id, _ = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {"fail": fail}})
    entry = await _assert_announced(stack, job_id, "Validation", "prepare")
    assert (entry["attempts"], entry["error_type"]) == (1, "PermissionDenied")


async def test_handler_missing(stack: Stack) -> None:
    """A stage no worker can run dead-letters as HandlerMissing at once, and is announced."""
    stages = (*load_job_types().get("demo").stages[:1], Stage(name="render", activity="demo.render"))
    job = JobInput(
        job_id="job-handler-missing-alert", tenant_id="a", job_type="demo", payload={}, stages=stages
    )
    handle = await stack.env.client.start_workflow(
        job.job_type, job, id=job.job_id, task_queue=stack.settings.task_queue
    )
    await _closed(stack.env, handle.id)
    entry = await _assert_announced(stack, job.job_id, "HandlerMissing", "render")
    assert entry["attempts"] == 1


CONFIG = """
[job_types.demo.stages.prepare]
schedule_to_start_timeout = "5s"
task_queue = "no-gpu-here"

[job_types.demo_review.stages.approval]
review_timeout = "1h"
"""


@pytest.fixture
async def configured_stack(
    skipping_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[Stack]:
    """The stack, with demo's `prepare` routed to a task queue no worker polls (5 s to find one) and
    demo_review's approval waiting at most an hour."""
    config = tmp_path / "redrive.toml"
    config.write_text(CONFIG)
    settings = settings_for(sqlite_url, tmp_path, config=config, **mailbox.settings())
    async with (
        running_worker(skipping_env.client, settings),
        running_api(settings, skipping_env.client) as url,
    ):
        yield Stack(skipping_env, settings, url, mailbox)


async def test_runner_unavailable(configured_stack: Stack) -> None:
    """A stage no worker picks up within its schedule-to-start timeout dead-letters as RunnerUnavailable."""
    stack = configured_stack
    job_id, _ = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {}})
    entry = await _assert_announced(stack, job_id, "RunnerUnavailable", "prepare")
    assert (entry["error_type"], entry["attempts"]) == ("ScheduleToStartTimeout", 1)
    assert "no worker started stage 'prepare'" in entry["error_message"]


async def test_review_timeout(configured_stack: Stack) -> None:
    """A review nobody decides within its timeout dead-letters the job as Timeout."""
    stack = configured_stack
    job_id, _ = await run_to_end(stack.env, stack.url, {"type": "demo_review", "payload": {}})
    entry = await _assert_announced(stack, job_id, "Timeout", "approval")
    assert (entry["error_type"], entry["attempts"]) == ("ReviewTimeout", 1)


async def test_rejected(stack: Stack) -> None:
    """A reviewer's reject dead-letters the job as Rejected, with the reviewer and comment in the error."""
    async with httpx.AsyncClient(base_url=stack.url, headers=A) as http:
        job_id = (await http.post("/v1/jobs", json={"type": "demo_review", "payload": {}})).json()["id"]
        await eventually(lambda: _shown(http, job_id, "pending_review"))
        decision = {"decision": "reject", "comment": "duplicate order"}
        assert (await http.post(f"/v1/jobs/{job_id}/review", json=decision)).status_code == 200
    await _closed(stack.env, job_id)
    entry = await _assert_announced(stack, job_id, "Rejected", "approval")
    assert "duplicate order" in entry["error_message"]


async def _shown(http: httpx.AsyncClient, job_id: str, status: str) -> bool:
    return bool((await http.get(f"/v1/jobs/{job_id}")).json()["status"] == status)


async def _closed(env: WorkflowEnvironment, job_id: str) -> None:
    handle = env.client.get_workflow_handle(job_id)
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await env.sleep(timedelta(seconds=15))

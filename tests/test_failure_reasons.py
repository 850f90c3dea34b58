"""Each way a job can fail, on the time-skipping server with the real worker, API and an SMTP server:
the dead-letter row, the job's status, the search attributes and the e-mail that announces it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from redrive.jobtypes import builtin_registry
from redrive.jobtypes.registry import StageSpec
from redrive.messages import JOB_WORKFLOW, JobInput
from redrive.status import ERROR_REASON, JOB_STAGE, JOB_STATUS
from tests.skipping import Stack, dead_letter_of, job_of, run_to_end
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
    stages = (*builtin_registry().get("demo").stages[:1], StageSpec(name="render", activity="demo.render"))
    job = JobInput(
        job_id="job-handler-missing-alert", tenant_id="a", job_type="demo", payload={}, stages=stages
    )
    handle = await stack.env.client.start_workflow(
        JOB_WORKFLOW, job, id=job.job_id, task_queue=stack.settings.task_queue
    )
    await _closed(stack.env, handle.id)
    entry = await _assert_announced(stack, job.job_id, "HandlerMissing", "render")
    assert entry["attempts"] == 1


@pytest.fixture
async def no_runner_stack(
    skipping_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[Stack]:
    """The stack, with `prepare` routed to a task queue no worker polls and 5 s to find a worker."""
    config = tmp_path / "redrive.toml"
    config.write_text(
        '[job_types.demo.stages.prepare]\nschedule_to_start_timeout = "5s"\ntask_queue = "no-gpu-here"\n'
    )
    settings = settings_for(sqlite_url, tmp_path, config=config, **mailbox.settings())
    async with (
        running_worker(skipping_env.client, settings),
        running_api(settings, skipping_env.client) as url,
    ):
        yield Stack(skipping_env, settings, url, mailbox)


async def test_runner_unavailable(no_runner_stack: Stack) -> None:
    """A stage no worker picks up within its schedule-to-start timeout dead-letters as RunnerUnavailable."""
    stack = no_runner_stack
    job_id, _ = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {}})
    entry = await _assert_announced(stack, job_id, "RunnerUnavailable", "prepare")
    assert (entry["error_type"], entry["attempts"]) == ("ScheduleToStartTimeout", 1)
    assert "no worker started stage 'prepare'" in entry["error_message"]


async def _closed(env: WorkflowEnvironment, job_id: str) -> None:
    handle = env.client.get_workflow_handle(job_id)
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await env.sleep(timedelta(seconds=15))

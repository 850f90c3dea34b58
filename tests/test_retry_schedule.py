"""On the time-skipping server, through the real API and worker: the declared backoff schedule,
permanent errors, missing handlers and Retry-After hints, with the dead-letter rows they leave."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from redrive.contracts import JobInput
from redrive.jobtypes import load_job_types
from redrive.jobtypes.registry import Stage
from redrive.store import create_engine, session_factory
from redrive.store.jobs import JobRepository
from tests.skipping import Stack, dead_letter_of, job_of, run_to_end
from tests.support import serving

A = {"Authorization": "Bearer key-a"}


def _gaps(history: list[dict[str, Any]]) -> list[float]:
    starts = [datetime.fromisoformat(item["started_at"]) for item in history]
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]


async def test_default_schedule_is_30_120_480_seconds_with_jitter(stack: Stack) -> None:
    """An always-failing stage runs 4 times, 30 s, 120 s, 480 s apart (+0..25 %), then dead-letters."""
    fail = {"stage": "process", "error": "ServiceUnavailable"}
    job_id, cause = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {"fail": fail}})
    entry = await dead_letter_of(stack.url, job_id)
    job = await job_of(stack.url, job_id)
    assert isinstance(cause, ApplicationError)
    assert cause.type == "MaxRetries"
    assert (entry["error_reason"], entry["error_type"], entry["attempts"]) == (
        "MaxRetries",
        "ServiceUnavailable",
        4,
    )
    assert [item["attempt"] for item in entry["error_history"]] == [1, 2, 3, 4]
    assert all(item["error_type"] == "ServiceUnavailable" for item in entry["error_history"])
    for gap, nominal in zip(_gaps(entry["error_history"]), (30, 120, 480), strict=True):
        assert nominal <= gap <= nominal * 1.25 + 1, (gap, nominal)
    assert (job["status"], job["stage"], job["error_reason"], job["attempt"]) == (
        "dead_letter",
        "process",
        "MaxRetries",
        4,
    )
    assert [(s["name"], s["executions"]) for s in job["stages"]] == [("prepare", 1), ("process", 4)]


async def test_permanent_error_dead_letters_after_one_attempt(stack: Stack) -> None:
    """A permanent error is not retried: one attempt, reason Validation, one history entry."""
    fail = {"stage": "finish", "error": "CorruptedFile"}
    job_id, cause = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {"fail": fail}})
    entry = await dead_letter_of(stack.url, job_id)
    job = await job_of(stack.url, job_id)
    assert isinstance(cause, ApplicationError)
    assert cause.type == "Validation"
    assert (entry["error_reason"], entry["error_type"], entry["attempts"], entry["stage"]) == (
        "Validation",
        "CorruptedFile",
        1,
        "finish",
    )
    assert len(entry["error_history"]) == 1
    assert entry["error_history"][0]["message"] == "demo failure in stage finish on attempt 1"
    assert entry["payload"] == {"fail": fail}
    assert [(s["name"], s["status"], s["executions"]) for s in job["stages"]] == [
        ("prepare", "complete", 1),
        ("process", "complete", 1),
        ("finish", "failed", 1),
    ]


async def test_success_projects_complete(stack: Stack) -> None:
    """A job without failures completes every stage once and leaves no dead letter."""
    job_id, cause = await run_to_end(stack.env, stack.url, {"type": "demo", "payload": {"sleep_ms": 10}})
    job = await job_of(stack.url, job_id)
    async with httpx.AsyncClient(base_url=stack.url, headers=A) as http:
        dead = (await http.get("/v1/dead-letters")).json()["items"]
    assert cause is None
    assert job["status"] == "complete"
    assert job["finished_at"] is not None
    assert [(s["name"], s["status"], s["executions"]) for s in job["stages"]] == [
        ("prepare", "complete", 1),
        ("process", "complete", 1),
        ("finish", "complete", 1),
    ]
    assert dead == []


async def test_missing_handler_dead_letters_at_once(stack: Stack) -> None:
    """A stage no worker has a handler for fails once as HandlerMissing, not as retried NotFoundError."""
    stages = (*load_job_types().get("demo").stages[:1], Stage(name="render", activity="demo.render"))
    job = JobInput(job_id="job-missing-handler", tenant_id="a", job_type="demo", payload={}, stages=stages)
    with pytest.raises(WorkflowFailureError) as failure:
        await stack.env.client.execute_workflow(
            job.job_type, job, id=job.job_id, task_queue=stack.settings.task_queue
        )
    entry = await dead_letter_of(stack.url, job.job_id)
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "HandlerMissing"
    assert (entry["error_reason"], entry["stage"], entry["attempts"]) == ("HandlerMissing", "render", 1)
    assert len(entry["error_history"]) == 1
    assert "demo.render" in entry["error_message"]


async def test_retry_after_hint_sets_the_next_delay(stack: Stack) -> None:
    """A real server's 503 with Retry-After: 45 delays the next attempt 45 s (+jitter), not 30 s."""
    calls: list[int] = []
    target = FastAPI()

    @target.post("/hook")
    async def hook() -> Response:
        calls.append(1)
        if len(calls) == 1:
            return Response("busy", status_code=503, headers={"Retry-After": "45"})
        return Response(status_code=200)

    async with serving(target) as hook_url:
        body = {"type": "webhook", "payload": {"url": f"{hook_url}/hook", "body": {"n": 1}}}
        job_id, cause = await run_to_end(stack.env, stack.url, body)
        job = await job_of(stack.url, job_id)
    assert cause is None
    assert len(calls) == 2
    assert job["status"] == "complete"
    failed_start = await _failed_attempt_start(stack.settings.resolved_database_url(), job_id)
    delay = await _last_attempt_start(stack.env, job_id) - failed_start
    assert timedelta(seconds=45) <= delay <= timedelta(seconds=45 * 1.25 + 1), delay


async def _failed_attempt_start(database_url: str, job_id: str) -> datetime:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            job = await JobRepository(session).get("a", job_id)
            assert job is not None
            assert job.run_id is not None
            failures = await JobRepository(session).failures(job_id, job.run_id)
    finally:
        await engine.dispose()
    assert [failure.attempt for failure in failures] == [1]
    return failures[0].started_at


async def _last_attempt_start(env: WorkflowEnvironment, job_id: str) -> datetime:
    """When the stage's final (second) attempt started, by the server's clock."""
    async for event in env.client.get_workflow_handle(job_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            assert event.activity_task_started_event_attributes.attempt == 2
            return event.event_time.ToDatetime(tzinfo=UTC)
    raise AssertionError("no ActivityTaskStarted event")

"""Stages declared `local = true` run as Temporal local activities on the dev server, with a real
worker and the API over HTTP: their retries and per-attempt error history, dead-lettering, the
history (markers, no scheduled activities), and a retry from the failed stage that does not run the
stage before it again."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from tests.support import api_client, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}
LOCAL = """
[job_types.demo]
local = true
initial_interval = "100ms"
backoff_coefficient = 1
max_retries = 2
"""


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The demo job type with every stage local, 2 retries 100 ms apart."""
    config = tmp_path / "redrive.toml"
    config.write_text(LOCAL)
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path, config=config), A) as http:
        yield http


async def test_local_stage_retries_dead_letters_and_retries_from_the_failed_stage(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`process` fails three times (retryable), dead-letters with every attempt's error; the
    history has local-activity markers and no scheduled stage; a retry continues from `process`."""
    breaker = tmp_path / "break"
    breaker.touch()
    fail = {"stage": "process", "error": "ServiceUnavailable", "while_exists": str(breaker)}
    created = await api.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    dead = await eventually(functools.partial(job_in, api, job_id, "dead_letter"), within=60)
    (entry,) = dead["dead_letters"]
    shown = (await api.get(f"/v1/dead-letters/{entry['id']}")).json()
    assert (shown["error_reason"], shown["attempts"]) == ("MaxRetries", 3)
    assert [attempt["attempt"] for attempt in shown["error_history"]] == [1, 2, 3]

    handle = dev_env.client.get_workflow_handle(job_id, run_id=dead["run_id"])
    events = [event async for event in handle.fetch_history_events()]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert not any(name.startswith("demo.") for name in scheduled), scheduled  # no stage was scheduled
    markers = [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) >= 2  # prepare's, process's

    breaker.unlink()
    retried = await api.post(f"/v1/jobs/{job_id}/retry", json={"reason": "fixed"})
    assert retried.status_code == 200, retried.text
    # Local stages share workflow tasks, so no reset point lies between them: a new run continues
    # from the failed stage with the outputs before it carried over.
    assert (retried.json()["mode"], retried.json()["from_stage"]) == ("continued", "process")
    done = await eventually(functools.partial(job_in, api, job_id, "complete"), within=60)
    executions = {stage["name"]: stage["executions"] for stage in done["stages"]}
    assert (executions["prepare"], executions["finish"]) == (1, 1)
    new_run = dev_env.client.get_workflow_handle(job_id, run_id=retried.json()["run_id"])
    ran = [_marker_stage(e) async for e in new_run.fetch_history_events() if _marker_stage(e)]
    assert ran == ["process", "finish"]  # prepare's output came from the dead run, not a new attempt


def _marker_stage(event: HistoryEvent) -> str | None:
    """The stage a local activity's marker records, if `event` is one."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    (payload,) = event.marker_recorded_event_attributes.details["data"].payloads
    stage: str = json.loads(payload.data)["activity_id"]
    return stage

"""Replay campaigns over HTTP on the dev server with a real worker: progress from the workflow,
each entry replayed once among racing campaigns and single replays, the canary that stops a
campaign, pause/resume/cancel, and a worker killed with SIGKILL in the middle of a campaign."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from redrive.contracts import REPLAY_CAMPAIGN_WORKFLOW, CampaignFilter, CampaignInput
from redrive.operations.retry import CLAIM_LEASE
from redrive.status import TENANT_ID
from redrive.store import create_engine, session_factory
from redrive.store.projection import ProjectionWrites
from redrive.store.types import utcnow
from tests.support import api_client, eventually, job_in, running_api, settings_for, worker_process_env

A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
ROOT = Path(__file__).parent.parent


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """API and worker on SQLite; an HTTP client as tenant a."""
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path), A) as http:
        yield http


async def _dead_jobs(http: httpx.AsyncClient, breaker: Path, count: int) -> list[str]:
    """`count` demo jobs that fail for good in `process` while `breaker` exists, once all are dead."""
    fail = {"stage": "process", "error": "ValidationError", "while_exists": str(breaker)}
    ids = []
    for _ in range(count):
        created = await http.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    for job_id in ids:
        await eventually(functools.partial(job_in, http, job_id, "dead_letter"), within=60)
    return ids


async def _counted_runs(env: WorkflowEnvironment, query: str, count: int) -> bool:
    return (await env.client.count_workflows(query)).count == count


async def _campaign_in(http: httpx.AsyncClient, campaign_id: str, *states: str) -> dict[str, Any] | None:
    answer = await http.get(f"/v1/replays/{campaign_id}")
    if answer.status_code == 503:  # no worker answered: the killed one's, while the next starts
        return None
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body if body["state"] in states else None


async def _ended(http: httpx.AsyncClient, campaign_id: str, state: str) -> dict[str, Any] | None:
    """The campaign once in `state` with its workflow completed."""
    body = await _campaign_in(http, campaign_id, state)
    return body if body and body["workflow_status"] == "COMPLETED" else None


async def _counted(http: httpx.AsyncClient, campaign_id: str) -> dict[str, Any] | None:
    body = await _campaign_in(http, campaign_id, "running", "paused", "finished")
    return body if body and body["matched"] else None


async def _pending(http: httpx.AsyncClient) -> int:
    return len((await http.get("/v1/dead-letters", params={"pending": True})).json()["items"])


async def test_campaign_replays_and_reports_progress(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """202 at once with the id; the workflow's progress and the jobs' fates; listed, visible in
    Temporal; another tenant sees nothing; bad orders are 422 naming the field."""
    breaker = tmp_path / "break"
    breaker.touch()
    jobs = await _dead_jobs(api, breaker, 4)
    breaker.unlink()
    dry = await api.post("/v1/replays", json={"filter": {"type": "demo"}, "dry_run": True})
    assert (dry.status_code, dry.json()["matched"], len(dry.json()["sample"])) == (200, 4, 4)

    started = await api.post("/v1/replays", json={"filter": {"type": "demo"}, "rate": 50, "reason": "INC-9"})
    assert started.status_code == 202, started.text
    campaign = started.json()
    assert started.headers["Location"] == f"/v1/replays/{campaign['id']}"
    assert (campaign["state"], campaign["reason"], campaign["max"]) == ("running", "INC-9", 100)
    done = await eventually(lambda: _campaign_in(api, campaign["id"], "finished"), within=60)
    assert (done["matched"], done["taken"], done["replayed"], done["skipped"], done["failed"]) == (
        4,
        4,
        4,
        0,
        0,
    )
    for job_id in jobs:
        job = await eventually(functools.partial(job_in, api, job_id, "complete"), within=60)
        assert [action["action"] for action in job["actions"]] == ["replay"]
    done = await eventually(lambda: _campaign_in(api, campaign["id"], "finished"))
    assert (done["completed"], done["died_again"], done["still_running"]) == (4, 0, 0)
    assert await _pending(api) == 0

    description = await dev_env.client.get_workflow_handle(campaign["id"]).describe()
    assert description.workflow_type == "ReplayCampaign"
    # On a task queue of its own beside the jobs', which every worker also polls.
    first_job = await dev_env.client.get_workflow_handle(jobs[0]).describe()
    assert description.task_queue == f"{first_job.task_queue}-operations"
    listed = (await api.get("/v1/replays")).json()["items"]
    assert campaign["id"] in [item["id"] for item in listed]
    assert (await api.get(f"/v1/replays/{campaign['id']}", headers=B)).status_code == 404
    assert campaign["id"] not in [
        item["id"] for item in (await api.get("/v1/replays", headers=B)).json()["items"]
    ]
    assert (await api.get("/v1/replays/replay-unknown")).status_code == 404
    ended = await api.post(f"/v1/replays/{campaign['id']}/pause")
    assert ended.status_code == 409

    both = await api.post("/v1/replays", json={"canary": {"count": 1, "percent": 10}})
    assert (both.status_code, both.json()["field"]) == (422, "body.canary")
    rate = await api.post("/v1/replays", json={"rate": 0})
    assert (rate.status_code, rate.json()["field"]) == (422, "body.rate")


async def test_racing_campaigns_and_single_replays_replay_each_entry_once(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Two campaigns and a single replay of every entry at once: one replay per entry between them."""
    breaker = tmp_path / "break"
    breaker.touch()
    jobs = await _dead_jobs(api, breaker, 5)
    breaker.unlink()
    # A reset of a dead run still sending its alert ends that run `Terminated`; wait until all have
    # failed, so a terminated run below can only be one replaced by a second reset.
    failed = f'TaskQueue="{api.headers["X-Task-Queue"]}" AND ExecutionStatus="Failed"'
    await eventually(functools.partial(_counted_runs, dev_env, failed, len(jobs)), within=60)
    entries = (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"]
    body = {"filter": {"type": "demo"}, "rate": 100}
    first, second, *singles = await asyncio.gather(
        api.post("/v1/replays", json=body),
        api.post("/v1/replays", json=body),
        *(api.post(f"/v1/dead-letters/{entry['id']}/replay") for entry in entries),
    )
    single_replays = sum(response.status_code == 200 for response in singles)
    assert all(response.status_code in (200, 409) for response in singles), [r.text for r in singles]
    reports = [
        await eventually(functools.partial(_campaign_in, api, c.json()["id"], "finished"), within=60)
        for c in (first, second)
    ]
    replays = sum(report["replayed"] + report["resubmitted"] for report in reports) + single_replays
    assert replays == len(jobs)
    for job_id in jobs:
        job = await eventually(functools.partial(job_in, api, job_id, "complete"), within=60)
        assert [action["action"] for action in job["actions"]] == ["replay"]
    terminated = await dev_env.client.count_workflows(
        f'TaskQueue="{api.headers["X-Task-Queue"]}" AND ExecutionStatus="Terminated"'
    )
    assert terminated.count == 0  # no run was replaced by a second reset
    # The dead runs the resets replaced are deleted, whoever replayed them, so the UI lists none.
    dead = f'TaskQueue="{api.headers["X-Task-Queue"]}" AND JobStatus="dead_letter"'
    await eventually(functools.partial(_counted_runs, dev_env, dead, 0), within=60)


async def test_canary_that_dies_again_stops_the_campaign(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """The canary's replays die again (the cause is not fixed): the campaign stops by itself and
    says why; the entries past the canary stay pending, untouched."""
    breaker = tmp_path / "break"
    breaker.touch()
    await _dead_jobs(api, breaker, 5)
    order = {"filter": {"type": "demo"}, "rate": 50, "canary": {"count": 2, "max_died_again_percent": 0}}
    started = (await api.post("/v1/replays", json=order)).json()
    assert started["canary"]["count"] == 2
    stopped = await eventually(lambda: _ended(api, started["id"], "stopped"), within=60)
    assert (stopped["taken"], stopped["replayed"], stopped["died_again"]) == (2, 2, 2)
    assert stopped["stop_reason"].startswith("canary: 2 of 2 replayed jobs died again")
    assert await _pending(api) == 5  # three never taken, two that died again


async def test_campaign_keeps_its_rate_a_window_at_a_time(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """At 2 a second, six entries go two to a window of a second: the last is replayed two
    seconds or so after the first (unpaced, the six would go within a fraction of a second)."""
    breaker = tmp_path / "break"
    breaker.touch()
    await _dead_jobs(api, breaker, 6)
    breaker.unlink()
    started = (await api.post("/v1/replays", json={"filter": {"type": "demo"}, "rate": 2})).json()
    done = await eventually(lambda: _campaign_in(api, started["id"], "finished"), within=60)
    assert done["replayed"] == 6
    replayed = (await api.get("/v1/dead-letters", params={"pending": False})).json()["items"]
    times = sorted(datetime.fromisoformat(entry["replayed_at"]) for entry in replayed)
    assert len(times) == 6
    assert (times[-1] - times[0]).total_seconds() >= 1.5, times


async def test_paused_campaign_replays_nothing_until_resumed_and_cancel_ends_it(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Paused at once: nothing is replayed while paused; resumed, it finishes. A slow campaign
    cancelled mid-way ends `cancelled` with the rest left pending."""
    breaker = tmp_path / "break"
    breaker.touch()
    await _dead_jobs(api, breaker, 6)
    breaker.unlink()
    order = {"filter": {"type": "demo"}, "max": 3, "rate": 0.5}  # one entry every two seconds
    started = (await api.post("/v1/replays", json=order)).json()
    await eventually(functools.partial(_counted, api, started["id"]))  # a worker has picked it up
    paused = await api.post(f"/v1/replays/{started['id']}/pause")
    assert (paused.status_code, paused.json()["state"]) == (200, "paused"), paused.text
    assert (await api.post(f"/v1/replays/{started['id']}/pause")).status_code == 409
    await asyncio.sleep(2)  # a step under way when the pause came finishes
    taken = (await api.get(f"/v1/replays/{started['id']}")).json()["taken"]
    await asyncio.sleep(3)
    still = (await api.get(f"/v1/replays/{started['id']}")).json()
    assert (still["state"], still["taken"]) == ("paused", taken)
    assert taken < 3
    assert await _pending(api) == 6 - taken
    resumed = await api.post(f"/v1/replays/{started['id']}/resume")
    assert resumed.json()["state"] in ("running", "finished"), resumed.text
    done = await eventually(lambda: _campaign_in(api, started["id"], "finished"), within=60)
    assert done["replayed"] == 3
    assert await _pending(api) == 3

    # Three left, at one every five seconds: the cancel comes while the first step's window lasts.
    slow = (await api.post("/v1/replays", json={"filter": {"type": "demo"}, "rate": 0.2})).json()
    await eventually(functools.partial(_counted, api, slow["id"]))
    cancelled = await api.post(f"/v1/replays/{slow['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    ended = await eventually(lambda: _campaign_in(api, slow["id"], "cancelled"), within=30)
    assert ended["taken"] <= 1
    assert ended["stop_reason"].startswith("cancelled by a/")
    assert await _pending(api) == 3 - ended["replayed"]


async def test_campaign_survives_a_worker_killed_mid_way(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """SIGKILL of the only worker while a campaign replays: a new worker finishes it, and every
    entry was replayed exactly once (one replay action per job, no run replaced twice)."""
    settings = settings_for(sqlite_url, tmp_path)
    env = worker_process_env(dev_env.client, settings)
    breaker = tmp_path / "break"
    breaker.touch()

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    first = worker()
    try:
        async with (
            running_api(settings, dev_env.client) as url,
            httpx.AsyncClient(base_url=url, headers=A, timeout=60) as http,
        ):
            jobs = await _dead_jobs(http, breaker, 16)
            breaker.unlink()
            started = (await http.post("/v1/replays", json={"filter": {"type": "demo"}, "rate": 4})).json()
            await eventually(lambda: _taken(http, started["id"], 4), within=30)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            second = worker()
            try:
                done = await eventually(lambda: _campaign_in(http, started["id"], "finished"), within=120)
                assert (done["taken"], done["replayed"] + done["resubmitted"], done["skipped"]) == (16, 16, 0)
                for job_id in jobs:
                    job = await eventually(functools.partial(job_in, http, job_id, "complete"), within=60)
                    assert [action["action"] for action in job["actions"]] == ["replay"]
                terminated = await dev_env.client.count_workflows(
                    f'TaskQueue="{settings.task_queue}" AND ExecutionStatus="Terminated"'
                )
                assert terminated.count == 0
            finally:
                second.terminate()
                second.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


async def _taken(http: httpx.AsyncClient, campaign_id: str, at_least: int) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get(f"/v1/replays/{campaign_id}")).json()
    return body if body["taken"] >= at_least else None


async def test_claim_left_by_a_retry_that_died_is_taken_over(
    api: httpx.AsyncClient, sqlite_url: str, tmp_path: Path
) -> None:
    """A job whose dead run a retry claimed and never recorded (its process died between claim and
    reset) is replayed by the next campaign once the claim's lease has passed, and only once."""
    breaker = tmp_path / "break"
    breaker.touch()
    (job_id,) = await _dead_jobs(api, breaker, 1)
    breaker.unlink()
    dead = (await api.get(f"/v1/jobs/{job_id}")).json()
    engine = create_engine(sqlite_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            long_ago = utcnow() - CLAIM_LEASE - timedelta(seconds=5)
            assert await ProjectionWrites(session).claim_retry(job_id, dead["run_id"], long_ago)
    finally:
        await engine.dispose()
    assert (await api.get(f"/v1/jobs/{job_id}")).json()["status"] == "queued"  # claimed, left so
    started = (await api.post("/v1/replays", json={"filter": {"type": "demo"}})).json()
    done = await eventually(lambda: _campaign_in(api, started["id"], "finished"), within=60)
    assert (done["replayed"], done["skipped"]) == (1, 0), done
    job = await eventually(functools.partial(job_in, api, job_id, "complete"), within=60)
    assert [action["action"] for action in job["actions"]] == ["replay"]


async def test_a_campaign_no_worker_picked_up_names_its_own_queue(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """A campaign started on the jobs' queue (as before campaigns had a queue of their own) that no
    worker runs: a pause is refused naming that queue, not the operations queue, and changes nothing;
    a cancel ends it."""
    queue = f"jobs-of-old-{uuid.uuid4().hex[:8]}"  # no worker polls it
    request = CampaignInput(
        campaign_id=f"replay-{uuid.uuid4().hex}",
        tenant_id="a",
        actor="a/test",
        filter=CampaignFilter(type="demo"),
        max=1,
        rate=1.0,
        cutoff=utcnow(),
    )
    handle = await dev_env.client.start_workflow(
        REPLAY_CAMPAIGN_WORKFLOW,
        request,
        id=request.campaign_id,
        task_queue=queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(TENANT_ID, "a")]),
    )
    paused = await api.post(f"/v1/replays/{request.campaign_id}/pause")
    assert paused.status_code == 409, paused.text
    assert f"task queue {queue} running?" in paused.json()["detail"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    cancelled = await api.post(f"/v1/replays/{request.campaign_id}/cancel")
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled"), cancelled.text
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED

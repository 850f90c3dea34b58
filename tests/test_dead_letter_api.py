"""The dead-letter queue over HTTP on the dev server with a real worker: retry from a chosen stage
with a reason, show, group, replay one and many (dry run, rate, races), and the replay limit."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from redrive.store import Job, create_engine, session_factory
from redrive.store.models import DeadLetter
from tests.support import api_client, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """API and worker on SQLite with a replay limit of 1; an HTTP client as tenant a."""
    settings = settings_for(sqlite_url, tmp_path, max_replays=1)
    async with api_client(dev_env.client, settings, A) as http:
        yield http


async def _dead_job(http: httpx.AsyncClient, breaker: Path, stage: str = "process", **headers: str) -> str:
    """Submit a demo job that fails permanently in `stage` while `breaker` exists; wait until it is dead."""
    fail = {"stage": stage, "error": "ValidationError", "while_exists": str(breaker)}
    created = await http.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}}, headers=headers)
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    await eventually(lambda: job_in(http, job_id, "dead_letter", headers))  # before the breaker goes
    return job_id


async def test_retry_from_an_earlier_stage_records_reason_and_caller(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """from_stage re-runs that stage and the ones after it; the reason and the caller are shown on the job."""
    breaker = tmp_path / "break"
    breaker.touch()
    job_id = await _dead_job(api, breaker, stage="finish")
    wrong = await api.post(f"/v1/jobs/{job_id}/retry", json={"from_stage": "deliver"})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "body.from_stage")
    assert "prepare, process, finish" in wrong.json()["detail"]
    too_long = await api.post(f"/v1/jobs/{job_id}/retry", json={"reason": "x" * 501})
    assert too_long.status_code == 422
    assert (await job_in(api, job_id, "dead_letter")) is not None  # bad requests changed nothing

    breaker.unlink()
    retried = await api.post(
        f"/v1/jobs/{job_id}/retry", json={"from_stage": "process", "reason": "INC-7 fixed"}
    )
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["mode"], body["from_stage"], body["reason"]) == ("reset", "process", "INC-7 fixed")
    assert body["retried_by"].startswith("a/env-")  # a REDRIVE_API_KEYS key, named by its hash
    done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    assert [(s["name"], s["executions"]) for s in done["stages"]] == [
        ("prepare", 1),
        ("process", 2),
        ("finish", 2),
    ]
    (action,) = done["actions"]
    assert (action["action"], action["by"]) == ("retry", body["retried_by"])
    assert action["note"] == "from stage process: INC-7 fixed"


async def test_show_group_and_replay_dead_letters(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """Groups count alike failures; dry run changes nothing; bulk and single replay drain the queue once."""
    breaker = tmp_path / "break"
    breaker.touch()
    jobs = [await _dead_job(api, breaker) for _ in range(3)]
    await _dead_job(api, breaker, **B)

    groups = (await api.get("/v1/dead-letters/groups")).json()["items"]
    assert [(g["type"], g["stage"], g["error_type"], g["count"]) for g in groups] == [
        ("demo", "process", "ValidationError", 3)
    ]
    fingerprint = groups[0]["fingerprint"]
    entry = (await api.get(f"/v1/dead-letters/{groups[0]['sample_id']}")).json()
    assert (entry["state"], entry["fingerprint"], entry["error_reason"]) == (
        "pending",
        fingerprint,
        "Validation",
    )
    assert (await api.get(f"/v1/dead-letters/{entry['id']}", headers=B)).status_code == 404
    assert (await api.get("/v1/dead-letters/not-a-uuid")).status_code == 422

    dry = (
        await api.post(
            "/v1/dead-letters/replay", json={"filter": {"fingerprint": fingerprint}, "dry_run": True}
        )
    ).json()
    assert (dry["matched"], len(dry["sample"]), dry["results"]) == (3, 3, [])
    assert len((await api.get("/v1/dead-letters", params={"pending": True})).json()["items"]) == 3

    breaker.unlink()
    bulk = {"filter": {"fingerprint": fingerprint}, "max": 2, "rate": 5, "reason": "bulk"}
    first = (await api.post("/v1/dead-letters/replay", json=bulk)).json()
    assert (first["matched"], first["replayed"], first["skipped"], first["failed"]) == (3, 2, 0, 0)
    (left,) = (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"]
    single = await api.post(f"/v1/dead-letters/{left['id']}/replay", json={"reason": "last one"})
    assert single.status_code == 200, single.text
    assert single.json()["mode"] == "reset"
    again = await api.post(f"/v1/dead-letters/{left['id']}/replay")
    assert again.status_code == 409
    for job_id in jobs:
        await eventually(functools.partial(job_in, api, job_id, "complete"), within=60)
    assert (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"] == []
    other = (await api.get("/v1/dead-letters", headers=B, params={"pending": True})).json()["items"]
    assert len(other) == 1  # tenant b's entry was never in a's filter


async def test_racing_bulk_replays_make_one_run_per_job(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """Two identical bulk replays at once: every job gets exactly one new run between them."""
    breaker = tmp_path / "break"
    breaker.touch()
    jobs = {await _dead_job(api, breaker) for _ in range(4)}
    breaker.unlink()
    body = {"filter": {"type": "demo"}, "rate": 100}
    first, second = await asyncio.gather(
        api.post("/v1/dead-letters/replay", json=body), api.post("/v1/dead-letters/replay", json=body)
    )
    runs: dict[str, set[str]] = {}
    for item in first.json()["results"] + second.json()["results"]:
        if item["outcome"] in ("reset", "resubmitted"):
            runs.setdefault(item["job_id"], set()).add(item["run_id"])
        else:
            assert item["outcome"] == "skipped", item
    assert set(runs) == jobs
    assert all(len(run_ids) == 1 for run_ids in runs.values()), runs
    for job_id, (run_id,) in runs.items():
        done = await eventually(functools.partial(job_in, api, job_id, "complete"), within=60)
        assert done["run_id"] == run_id


async def test_replay_limit_needs_force(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """A job dead again after a replay links to its first entry; past the limit only force replays it."""
    breaker = tmp_path / "break"
    breaker.touch()
    job_id = await _dead_job(api, breaker)
    (first,) = (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"]
    assert (await api.post(f"/v1/dead-letters/{first['id']}/replay")).status_code == 200
    await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)  # still broken: dies again
    (second,) = (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"]
    assert (second["replay_of"], second["replay_count"]) == (first["id"], 1)

    refused = await api.post(f"/v1/dead-letters/{second['id']}/replay")
    assert (refused.status_code, refused.json()["title"]) == (409, "Replay limit reached")
    bulk = (await api.post("/v1/dead-letters/replay", json={})).json()
    assert (bulk["replayed"], bulk["skipped"]) == (0, 1)
    breaker.unlink()
    forced = await api.post(f"/v1/dead-letters/{second['id']}/replay", json={"force": True})
    assert forced.status_code == 200, forced.text
    done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    chain = [(e["id"], e["replay_of"], e["replayed_at"] is not None) for e in done["dead_letters"]]
    assert chain == [(first["id"], None, True), (second["id"], first["id"], True)]
    assert [a["action"] for a in done["actions"]] == ["replay", "replay"]


@pytest.mark.parametrize("forgotten_by", ["job", "job and entry"])
async def test_retry_after_the_history_is_gone_resubmits(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, forgotten_by: str
) -> None:
    """A dead job whose run Temporal no longer has (past retention) starts again from its stored
    payload with the current plan, and its new run upserts search attributes on status changes.
    The projection is pointed at a run id Temporal never had: deleting the run took the dev server
    27 s alone and over two minutes inside the suite. With the entry pointed there too, the retry
    resets to the point the entry recorded without reading the history, and finds the run gone."""
    breaker = tmp_path / "break"
    breaker.touch()
    job_id = await _dead_job(api, breaker)
    engine = create_engine(sqlite_url)
    gone = str(uuid.uuid4())
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.exec(sa.update(Job).where(col(Job.id) == job_id).values(run_id=gone))
            if forgotten_by == "job and entry":
                entry = sa.update(DeadLetter).where(col(DeadLetter.original_job_id) == job_id)
                await session.exec(entry.values(run_id=gone))
    finally:
        await engine.dispose()
    breaker.unlink()
    retried = await api.post(f"/v1/jobs/{job_id}/retry", json={"reason": "history expired"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["mode"] == "resubmitted"
    await eventually(lambda: job_in(api, job_id, "complete"), within=30)
    handle = dev_env.client.get_workflow_handle(job_id)
    await handle.result()  # the last upsert rides on the closing workflow task
    upserts = [
        event
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    assert len(upserts) == 2  # running, complete: the resubmitted plan carries the new shape

"""On the Temporal dev server, through the real API over HTTP and a real worker, on SQLite and on
PostgreSQL: dead letter, retry from the failed stage, tenancy, idempotency and bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from redrive.contracts import JobInput
from redrive.operations.submit import job_id_for
from redrive.settings import Settings
from redrive.status import JOB_STAGE, JOB_STATUS
from redrive.store.engine import create_engine
from redrive.store.models import JOBS
from tests.support import api_client, dead_runs, eventually, job_in, settings_for

A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
FAST_RETRIES = """
[job_types.demo]
initial_interval = "2s"
backoff_coefficient = 1
"""


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and a worker against the dev server, with 2 s demo backoffs; an HTTP client as tenant a."""
    config = tmp_path / "redrive.toml"
    config.write_text(FAST_RETRIES)
    settings = settings_for(database_url, tmp_path, config=config)
    async with api_client(dev_env.client, settings, A) as http:
        yield http


async def _dead_in_temporal(env: WorkflowEnvironment, task_queue: str) -> set[str]:
    return {job_id for job_id, _ in await dead_runs(env.client, task_queue)}


async def test_dead_job_retries_from_the_failed_stage(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A job dead-letters, shows as dead in SQL and Temporal, and a retry re-runs only the failed stage."""
    breaker = tmp_path / "break-process"
    breaker.touch()
    fail = {"stage": "process", "error": "ServiceUnavailable", "while_exists": str(breaker)}
    created = await api.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["status"] == "queued"

    retrying = await eventually(lambda: job_in(api, job_id, "retrying"))
    assert retrying["error_type"] == "ServiceUnavailable"
    assert retrying["max_attempts"] == 4
    # What we show is what Temporal will do: its pending activity's next attempt, to the second.
    pending = (await dev_env.client.get_workflow_handle(job_id).describe()).raw_description.pending_activities
    server_next = pending[0].next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
    shown_next = datetime.fromisoformat(retrying["next_retry_at"])
    assert abs((server_next - shown_next).total_seconds()) < 1.0, (server_next, shown_next)
    assert pending[0].attempt == retrying["attempt"] + 1

    dead = await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)
    assert (dead["stage"], dead["error_reason"], dead["attempt"]) == ("process", "MaxRetries", 4)
    assert dead["temporal_url"].endswith(f"/workflows/{job_id}/{dead['run_id']}/history")
    task_queue = api.headers["X-Task-Queue"]
    assert await eventually(lambda: _dead_in_temporal(dev_env, task_queue)) == {job_id}
    entries = (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"]
    assert [(e["original_job_id"], e["attempts"], len(e["error_history"])) for e in entries] == [
        (job_id, 4, 4)
    ]

    breaker.unlink()
    retried = await api.post(f"/v1/jobs/{job_id}/retry", json={"reason": "downstream fixed"})
    assert retried.status_code == 200, retried.text
    assert (retried.json()["mode"], retried.json()["from_stage"]) == ("reset", "process")
    again = await api.post(f"/v1/jobs/{job_id}/retry")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    assert done["run_id"] == retried.json()["run_id"]
    assert [(s["name"], s["executions"]) for s in done["stages"]] == [
        ("prepare", 1),  # not run again
        ("process", 5),  # 4 failed attempts, then 1 in the new run
        ("finish", 1),
    ]
    assert (await api.get("/v1/dead-letters", params={"pending": True})).json()["items"] == []
    replayed = (await api.get("/v1/dead-letters", params={"pending": False})).json()["items"]
    assert replayed[0]["replayed_at"] is not None
    assert await eventually(lambda: _none_dead(dev_env, task_queue), within=60)


async def test_a_worker_without_the_sandbox_runs_dead_letters_and_retries(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """With `REDRIVE_WORKFLOW_SANDBOX=false` a job dead-letters, is retried from its failed stage by a
    reset (its history replayed outside the sandbox) and completes without re-running earlier stages."""
    config = tmp_path / "redrive.toml"
    config.write_text(FAST_RETRIES)
    settings = settings_for(sqlite_url, tmp_path, config=config, workflow_sandbox=False)
    breaker = tmp_path / "break-finish"
    breaker.touch()
    fail = {"stage": "finish", "error": "ServiceUnavailable", "while_exists": str(breaker)}
    async with api_client(dev_env.client, settings, A) as api:
        job_id = (await api.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})).json()["id"]
        dead = await eventually(lambda: job_in(api, job_id, "dead_letter"), within=60)
        assert (dead["stage"], dead["error_reason"]) == ("finish", "MaxRetries")
        breaker.unlink()
        retried = await api.post(f"/v1/jobs/{job_id}/retry")
        assert (retried.json()["mode"], retried.json()["from_stage"]) == ("reset", "finish"), retried.text
        done = await eventually(lambda: job_in(api, job_id, "complete"), within=60)
    assert [(s["name"], s["executions"]) for s in done["stages"]] == [
        ("prepare", 1),
        ("process", 1),
        ("finish", 5),
    ]


async def _none_dead(env: WorkflowEnvironment, task_queue: str) -> bool:
    return not await _dead_in_temporal(env, task_queue)


async def test_search_attributes_follow_status_changes(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """One upsert per status change, not per stage: while a job runs, its stage is the workflow's
    current details (the UI shows them) and JobStage is unset; at the end JobStage names the stage."""
    created = await api.post("/v1/jobs", json={"type": "demo", "payload": {"sleep_ms": 1500}})
    handle = dev_env.client.get_workflow_handle(created.json()["id"])
    running = await eventually(lambda: _in_stage(api, handle.id, "process"))
    assert running["status"] == "running"
    attributes = (await handle.describe()).typed_search_attributes
    assert (attributes.get(JOB_STATUS), attributes.get(JOB_STAGE)) == ("running", None)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details == "running: stage process"
    await eventually(lambda: job_in(api, handle.id, "complete"), within=20)
    await handle.result()
    attributes = (await handle.describe()).typed_search_attributes
    assert (attributes.get(JOB_STATUS), attributes.get(JOB_STAGE)) == ("complete", "finish")
    upserts = [
        event
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    assert len(upserts) == 2  # running, complete


async def _in_stage(http: httpx.AsyncClient, job_id: str, stage: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
    return body if body["stage"] == stage else None


async def test_tenants_see_only_their_own_jobs(api: httpx.AsyncClient) -> None:
    """Tenant b gets 404 for tenant a's job and does not see it listed or counted."""
    job = (await api.post("/v1/jobs", json={"type": "demo", "payload": {}})).json()
    other = await api.get(f"/v1/jobs/{job['id']}", headers=B)
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
    assert (await api.post(f"/v1/jobs/{job['id']}/retry", headers=B)).status_code == 404
    listed = (await api.get("/v1/jobs", headers=B)).json()
    assert listed["items"] == []
    assert listed["counts"] == {}
    assert [item["id"] for item in (await api.get("/v1/jobs")).json()["items"]] == [job["id"]]


async def test_idempotency_key_returns_the_same_job(api: httpx.AsyncClient) -> None:
    """The same key gives the same job (202 then 200); the key with another payload is a 409."""
    key = f"order-{uuid.uuid4().hex}"  # the dev server outlives each test's database
    body = {"type": "demo", "payload": {"sleep_ms": 1}, "idempotency_key": key}
    first = await api.post("/v1/jobs", json=body)
    second = await api.post("/v1/jobs", json=body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert key not in first.json()["id"]
    clash = await api.post("/v1/jobs", json={**body, "payload": {"sleep_ms": 2}})
    assert clash.status_code == 409
    assert clash.json()["field"] == "body.idempotency_key"
    other_tenant = await api.post("/v1/jobs", json=body, headers=B)
    assert other_tenant.json()["id"] != first.json()["id"]
    await eventually(lambda: job_in(api, first.json()["id"], "complete"))
    assert (await api.get("/v1/jobs")).json()["counts"] == {"complete": 1}


async def test_racing_requests_with_one_key(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, database_url: str
) -> None:
    """20 concurrent submissions with one key and 20 payloads: one 202, 19 409s, and the payload in
    SQL is the one Temporal runs; 20 identical ones: one 202 and 19 200s naming the same job."""
    key = f"race-{uuid.uuid4().hex}"
    bodies = [{"type": "demo", "payload": {"sleep_ms": n}, "idempotency_key": key} for n in range(20)]
    answers = await asyncio.gather(*(api.post("/v1/jobs", json=body) for body in bodies))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] + [409] * 19, [answer.text for answer in answers]
    ((index, winner),) = [(n, answer.json()) for n, answer in enumerate(answers) if answer.status_code == 202]
    handle = dev_env.client.get_workflow_handle(winner["id"])
    async for event in handle.fetch_history_events():
        attributes = event.workflow_execution_started_event_attributes
        (running,) = await dev_env.client.data_converter.decode(attributes.input.payloads, [JobInput])
        break
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = (await connection.execute(sa.select(JOBS.c.payload).where(JOBS.c.id == winner["id"]))).one()
    await engine.dispose()
    assert stored.payload == running.payload == bodies[index]["payload"]

    same = {"type": "demo", "payload": {"sleep_ms": 3}, "idempotency_key": f"same-{uuid.uuid4().hex}"}
    repeats = await asyncio.gather(*(api.post("/v1/jobs", json=same) for _ in range(20)))
    assert sorted(answer.status_code for answer in repeats) == [200] * 19 + [202]
    assert len({answer.json()["id"] for answer in repeats}) == 1


async def test_listing_pages_with_a_cursor(api: httpx.AsyncClient) -> None:
    """Pages of 2 walk every job once, newest first; the first page's counts cover the whole filter,
    and the pages after it count nothing again."""
    ids = [(await api.post("/v1/jobs", json={"type": "demo", "payload": {}})).json()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/jobs", params=params)).json()
        if cursor is None:
            assert sum(page["counts"].values()) == 5
        else:
            assert page["counts"] is None
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5
    by_type = (await api.get("/v1/jobs", params={"type": "webhook"})).json()
    assert by_type["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/v1/jobs", {"type": "nope", "payload": {}}, 422, "body.type"),
        ("post", "/v1/jobs", {"type": "demo", "payload": [1]}, 422, "body.payload"),
        ("post", "/v1/jobs", {"type": "demo", "surprise": 1}, 422, "body.surprise"),
        ("get", "/v1/jobs?limit=201", None, 422, "query.limit"),
        ("get", "/v1/jobs?status=sleeping", None, 422, "query.status"),
        ("get", "/v1/jobs?cursor=not-a-cursor", None, 422, "query.cursor"),
        ("post", "/v1/jobs/job-unknown/retry", {}, 404, None),
        ("post", "/v1/jobs/job-unknown/retry", {"reason": "x" * 501}, 422, "body.reason"),
        ("get", "/v1/dead-letters?reason=Bored", None, 422, "query.reason"),
        ("post", "/v1/jobs", {"type": "webhook", "payload": {}}, 422, "body.payload.url"),
        (
            "post",
            "/v1/jobs",
            {"type": "webhook", "payload": {"url": "ftp://x.example"}},
            422,
            "body.payload.url",
        ),
        (
            "post",
            "/v1/jobs",
            {"type": "webhook", "payload": {"url": "https://x.example", "method": "BREW"}},
            422,
            "body.payload.method",
        ),
        ("post", "/v1/jobs", {"type": "demo", "payload": {"blob": "x" * 300_000}}, 413, "body"),
        ("post", "/v1/jobs", {"type": "demo", "payload": {"sleep_ms": -1}}, 422, "body.payload.sleep_ms"),
        (
            "post",
            "/v1/jobs",
            {"type": "demo", "payload": {"fail": {"stage": "process", "error": "Oops"}}},
            422,
            "body.payload.fail.error",
        ),
    ],
)
async def test_bad_requests_get_problem_json(
    api: httpx.AsyncClient, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    """Bad input is a 4xx problem+json naming the field, and creates nothing."""
    response = await api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["detail"]
    if field is not None:
        assert problem["field"] == field
    assert (await api.get("/v1/jobs")).json()["items"] == []


async def test_idempotency_key_header(api: httpx.AsyncClient) -> None:
    """The Idempotency-Key header works like the body field; the two disagreeing is a 422."""
    key = f"hdr-{uuid.uuid4().hex}"
    first = await api.post("/v1/jobs", json={"type": "demo"}, headers={"Idempotency-Key": key})
    again = await api.post("/v1/jobs", json={"type": "demo", "idempotency_key": key})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    clash = await api.post(
        "/v1/jobs", json={"type": "demo", "idempotency_key": "x"}, headers={"Idempotency-Key": "y"}
    )
    assert (clash.status_code, clash.json()["field"]) == (422, "header.Idempotency-Key")


async def test_unknown_type_names_the_known_ones(api: httpx.AsyncClient) -> None:
    """An unknown job type's 422 lists the types that exist."""
    detail = (await api.post("/v1/jobs", json={"type": "nope"})).json()["detail"]
    assert "demo" in detail
    assert "webhook" in detail


async def test_auth_is_required(api: httpx.AsyncClient) -> None:
    """No key or a wrong key is a 401 with WWW-Authenticate; health endpoints are open."""
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic a"}):
        response = await api.get("/v1/jobs", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await api.get("/healthz", headers={"Authorization": ""})).json() == {"status": "ok"}
    assert (await api.get("/readyz", headers={"Authorization": ""})).json() == {"status": "ready"}


async def test_retry_of_a_running_job_is_a_conflict(api: httpx.AsyncClient) -> None:
    """Only dead jobs can be retried: a running one gets 409 with its status in the detail."""
    job = (await api.post("/v1/jobs", json={"type": "demo", "payload": {"sleep_ms": 3000}})).json()
    response = await api.post(f"/v1/jobs/{job['id']}/retry")
    assert response.status_code == 409
    assert "only a dead-lettered job can be retried" in response.json()["detail"]


def test_settings_refuse_malformed_api_keys() -> None:
    """REDRIVE_API_KEYS entries must be key:tenant."""
    with pytest.raises(ValueError, match="key:tenant"):
        Settings(api_keys="just-a-key")


async def test_list_filters(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """stage, error_reason and creation-time filters narrow the page; counts follow the same filter."""
    before = datetime.now(UTC)
    fail = {"stage": "finish", "error": "ValidationError"}
    dead = (await api.post("/v1/jobs", json={"type": "demo", "payload": {"fail": fail}})).json()["id"]
    ok = (await api.post("/v1/jobs", json={"type": "demo", "payload": {}})).json()["id"]
    await eventually(lambda: job_in(api, dead, "dead_letter"))
    await eventually(lambda: job_in(api, ok, "complete"))

    async def ids(**params: str) -> list[str]:
        return [job["id"] for job in (await api.get("/v1/jobs", params=params)).json()["items"]]

    assert await ids(error_reason="Validation") == [dead]
    assert await ids(stage="finish", status="dead_letter") == [dead]
    assert sorted(await ids(created_after=before.isoformat())) == sorted([dead, ok])
    assert await ids(created_before=before.isoformat()) == []
    counts = (await api.get("/v1/jobs", params={"error_reason": "Validation"})).json()["counts"]
    assert counts == {"dead_letter": 1}
    bad = await api.get("/v1/jobs", params={"created_after": "1700000000"})
    assert (bad.status_code, bad.json()["field"]) == (422, "query.created_after")


async def test_malformed_json_and_wrong_types(api: httpx.AsyncClient) -> None:
    """A body that is not JSON, or has a field of the wrong type, is a 4xx problem naming the body."""
    broken = await api.post(
        "/v1/jobs", content=b'{"type": "demo",', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code in (400, 422), broken.text
    assert broken.headers["content-type"] == "application/problem+json"
    assert broken.json()["field"].startswith("body")
    wrong = await api.post("/v1/jobs", json={"type": 5, "payload": {}})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "body.type")
    flag = await api.post("/v1/dead-letters/replay", json={"dry_run": "yes"})
    assert (flag.status_code, flag.json()["field"]) == (422, "body.dry_run")


@pytest.mark.parametrize(
    ("raw_payload", "field"),
    [
        (b'{"n": NaN}', "body.payload.n"),
        (b'{"n": [1, Infinity]}', "body.payload.n[1]"),
        (b'{"n": -Infinity}', "body.payload.n"),
        (b'{"text": "a\\u0000b"}', "body.payload.text"),
        (b'{"deep": {"text": "\\ud800"}}', "body.payload.deep.text"),
        (b'{"a\\u0000": 1}', "body.payload (a key)"),
        (b'{"\\udfff": 1}', "body.payload (a key)"),
        (b'{"d": ' + b"[" * 70 + b"]" * 70 + b"}", "body.payload.d" + "[0]" * 64),
    ],
)
async def test_payloads_no_store_can_hold_are_refused(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, raw_payload: bytes, field: str
) -> None:
    """NaN, Infinity, NUL characters and lone surrogates (in values or keys) are a 422 naming the
    field, and nothing starts: no row, no workflow."""
    body = b'{"type": "demo", "payload": ' + raw_payload + b', "idempotency_key": "edge"}'
    response = await api.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert (await api.get("/v1/jobs")).json()["items"] == []
    job_id = job_id_for("a", "edge")
    with pytest.raises(RPCError):
        await dev_env.client.get_workflow_handle(job_id).describe()


async def test_a_streamed_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    """A chunked body (no Content-Length) over the limit is a 413 too, not a parse error."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "demo", "payload": {"blob": "'
        for _ in range(40):
            yield b"x" * 8192
        yield b'"}}'

    response = await api.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["field"]) == (413, "body")
    assert (await api.get("/v1/jobs")).json()["items"] == []

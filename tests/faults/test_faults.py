"""The fault battery: kill -9 of workers and of the Temporal server, PostgreSQL stopped, racing
requests and malformed input, against separate processes on loopback. Each test prints lost,
duplicated, stuck, SQL/Temporal disagreements, recovery time and 5xx count, and asserts them zero.

The tests not marked `slow` run with the rest (`scripts/test`); `scripts/faults` runs them all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from redrive.operations.submit import job_id_for
from redrive.store.projection import LOST
from tests.faults.audit import Report, audit, failures_of_type, wait_closed
from tests.faults.harness import HEADERS, Postgres, Stack
from tests.support import eventually, job_in

SLOW = {"sleep_ms": 2500}
DYING = {"fail": {"stage": "process", "error": "ServiceUnavailable"}}

pytestmark = pytest.mark.timeout(600)


def _client(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.api_url, headers=HEADERS, timeout=60)


async def _submit(http: httpx.AsyncClient, payloads: Sequence[dict[str, Any]]) -> set[str]:
    answers = await asyncio.gather(
        *(http.post("/v1/jobs", json={"type": "demo", "payload": p}) for p in payloads)
    )
    assert all(answer.status_code == 202 for answer in answers), [
        a.text for a in answers if a.status_code != 202
    ]
    return {answer.json()["id"] for answer in answers}


async def _worker_kills(stack: Stack, report: Report, jobs: int, kills: int) -> None:
    async with _client(stack) as http:
        accepted = await _submit(http, [SLOW] * (jobs - jobs // 5) + [DYING] * (jobs // 5))
        for kill in range(kills):
            await asyncio.sleep(1.5)
            name = f"worker-{kill % 2 + 1}"
            stack.kill_worker(name)
            stack.start_worker(name)
        _, report.recovery_s = await wait_closed(stack, accepted, within=120)
        await audit(stack, report, accepted)
    assert report.clean(), report.details
    assert await failures_of_type(stack, LOST), "a killed worker's attempts appear in the error history"


async def test_worker_kills(stack: Stack, report: Report) -> None:
    """Two kill -9s of a worker while 30 jobs run: every job finishes once, and its rows agree."""
    await _worker_kills(stack, report, jobs=30, kills=2)


@pytest.mark.slow
async def test_many_worker_kills(stack: Stack, report: Report) -> None:
    """Five kill -9s among 300 jobs."""
    await _worker_kills(stack, report, jobs=300, kills=5)


async def test_worker_shutdown_mid_stage(stack: Stack, report: Report) -> None:
    """SIGTERM of the only worker while its stages run: each cut-off attempt is in the error history
    as `WorkerShutdown`, and the other worker finishes every job."""
    stack.kill_worker("worker-2")  # before any job: every stage runs on worker-1
    async with _client(stack) as http:
        accepted = await _submit(http, [{"sleep_ms": 8000}] * 4)
        await eventually(lambda: _all_running(http, accepted))
        stack.start_worker("worker-2")
        stack.stop_worker("worker-1")
        _, report.recovery_s = await wait_closed(stack, accepted, within=120)
        await audit(stack, report, accepted)
    assert report.clean(), report.details
    assert await failures_of_type(stack, "WorkerShutdown") == accepted


async def _all_running(http: httpx.AsyncClient, job_ids: set[str]) -> bool:
    for job_id in job_ids:
        if await job_in(http, job_id, "running") is None:
            return False
    return True


async def _postgres_outage(
    stack: Stack, postgres: Postgres, report: Report, jobs: int, outage: float
) -> None:
    refused: set[str] = set()
    async with _client(stack) as http:
        accepted = await _submit(http, [SLOW] * (jobs // 2) + [DYING] * (jobs - jobs // 2))
        await asyncio.sleep(1)
        postgres.stop()
        began = time.monotonic()
        for n in range(5):  # with no key the API needs no read: the job starts, and the answer says so
            answer = await http.post("/v1/jobs", json={"type": "demo", "payload": SLOW})
            if answer.status_code == 202:
                accepted.add(answer.json()["id"])
            else:
                report.details.append(f"unkeyed submission {n} during the outage: {answer.status_code}")
                report.server_errors += answer.status_code >= 500 and answer.status_code != 503
            key = f"outage-{n}"
            answer = await http.post(
                "/v1/jobs", json={"type": "demo", "payload": SLOW, "idempotency_key": key}
            )
            assert answer.status_code == 503, answer.text  # the key needs a read: refused, and nothing ran
            refused.add(job_id_for("a", key))
        await asyncio.sleep(max(0.0, outage - (time.monotonic() - began)))
        postgres.start()
        recovered = time.monotonic()
        await audit(stack, report, accepted, refused)
        report.recovery_s = time.monotonic() - recovered
    assert report.clean(), report.details


async def test_postgres_outage(stack: Stack, postgres: Postgres, report: Report) -> None:
    """PostgreSQL stopped for 8 s while 20 jobs run and dead-letter: after it is back and one
    maintenance pass, no job is lost or doubled and every row agrees with Temporal."""
    await _postgres_outage(stack, postgres, report, jobs=20, outage=8)


@pytest.mark.slow
async def test_long_postgres_outage(stack: Stack, postgres: Postgres, report: Report) -> None:
    """PostgreSQL stopped for 30 s while 50 jobs dead-letter (the outage the issue describes)."""
    await _postgres_outage(stack, postgres, report, jobs=50, outage=30)


@pytest.mark.slow
async def test_server_kills(stack: Stack, report: Report) -> None:
    """Two kill -9s of the Temporal server while 100 jobs run."""
    async with _client(stack) as http:
        accepted = await _submit(http, [SLOW] * 80 + [DYING] * 20)
        for _ in range(2):
            await asyncio.sleep(2)
            stack.kill_server()
            await stack.start_server()
        _, report.recovery_s = await wait_closed(stack, accepted, within=240)
        await audit(stack, report, accepted, within=240)
    assert report.clean(), report.details


async def test_racing_requests(stack: Stack, report: Report) -> None:
    """20 submissions with one key and 20 payloads: one job; 30 racing retries of a dead job: one
    reset; the rest refused with 409."""
    async with _client(stack) as http:
        bodies = [{"type": "demo", "payload": {"sleep_ms": n}, "idempotency_key": "race"} for n in range(20)]
        answers = await asyncio.gather(*(http.post("/v1/jobs", json=body) for body in bodies))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [202] + [409] * 19, codes
        accepted = {answer.json()["id"] for answer in answers if answer.status_code == 202}
        (dead,) = await _submit(http, [DYING])
        accepted.add(dead)
        await wait_closed(stack, {dead}, within=60)
        await eventually(lambda: job_in(http, dead, "dead_letter"))
        retries = await asyncio.gather(*(http.post(f"/v1/jobs/{dead}/retry", json={}) for _ in range(30)))
        outcomes = sorted(answer.status_code for answer in retries)
        report.server_errors = sum(code >= 500 for code in outcomes)
        assert outcomes == [200] + [409] * 29, outcomes
        await eventually(lambda: job_in(http, dead, "dead_letter"), within=60)
        await audit(stack, report, accepted)
        assert stack.client is not None
        runs = [e async for e in stack.client.list_workflows(f'WorkflowId="{dead}"')]
        assert len(runs) in (1, 2)  # the reset run (the dead one may already be deleted)
    assert report.clean(), report.details


MALFORMED: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("POST", "/v1/jobs", b'{"type": "demo",', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"n": NaN}}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"n": Infinity}}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"t": "\\u0000"}}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"t": "\\ud800"}}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"\\udfff": 1}}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"d": ' + b"[" * 100 + b"]" * 100 + b"}}", {}),
    ("POST", "/v1/jobs", b'{"type": "\\u0000", "payload": {}}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {}, "idempotency_key": "\\ud800"}', {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {}}', {"Idempotency-Key": "\x7f"}),
    ("POST", "/v1/jobs", b"\xff\xfe not utf-8", {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": "x"}', {}),
    ("POST", "/v1/jobs", b"[]", {}),
    ("POST", "/v1/jobs", b"null", {}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {}}', {"Content-Type": "text/plain"}),
    ("POST", "/v1/jobs", b'{"type": "demo", "payload": {"blob": "' + b"x" * 300_000 + b'"}}', {}),
    ("GET", "/v1/jobs?cursor=%00", None, {}),
    ("GET", "/v1/jobs?created_after=%ED%A0%80", None, {}),
    ("GET", "/v1/jobs/%00", None, {}),
    ("GET", "/v1/jobs/" + "x" * 5000, None, {}),
    ("POST", "/v1/jobs/job-x/retry", b'{"from_stage": "\\u0000"}', {}),
    ("POST", "/v1/dead-letters/replay", b'{"filter": {"type": "\\ud800"}}', {}),
    ("POST", "/v1/dead-letters/replay", b'{"max": 1e400}', {}),
]


async def test_malformed_input(stack: Stack, report: Report) -> None:
    """Malformed requests get 4xx problem documents: no 5xx, and no job starts."""
    async with _client(stack) as http:
        for method, path, body, headers in MALFORMED:
            sent = {"Content-Type": "application/json", **headers} if body is not None else headers
            answer = await http.request(method, path, content=body, headers=sent)
            if answer.status_code >= 500 or answer.status_code < 400:
                report.server_errors += answer.status_code >= 500
                report.details.append(
                    f"{method} {path[:60]} {body[:60] if body else ''!r}: {answer.status_code}"
                )
        await audit(stack, report, set())
    assert report.clean(), report.details

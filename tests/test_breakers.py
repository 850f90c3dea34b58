"""Circuit breakers on the dev server, with a real worker and the API over HTTP: a breaker opens on
its declared threshold and pauses the attempts waiting for a retry (their attempt counter stands
still), half-opens with one probe, closes and releases the held jobs paced; an operator opens and
closes one by hand; its state outlives the worker; a job that needs another stage is not held."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from redrive.activities.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertConfig, signature
from redrive.activities.alerts.breakers import BreakerAlert, announce_breaker
from redrive.breaker_policy import Breaker, BreakerRef, downstream
from redrive.contracts import BREAKER_WORKFLOW, OPERATE_BREAKER, BreakerOrder
from redrive.jobtypes import load_job_types
from redrive.operations.breakers import breaker_input, declared, paused_attempt
from redrive.settings import Settings
from redrive.store import create_engine, session_factory
from redrive.store.breakers import HALF_OPEN, PAUSED, WAITING, BreakerStore, Figures
from redrive.store.jobs import JobRepository
from tests.support import (
    Mailbox,
    api_client,
    eventually,
    job_in,
    running_api,
    running_worker,
    serving,
    settings_for,
)
from tests.test_cli_remote import redrive

A = {"Authorization": "Bearer key-a"}
BREAKER = """
[job_types.demo]
initial_interval = "1s"
backoff_coefficient = 1
max_retries = 3

[job_types.demo.stages.process.breaker]
window = "1m"
min_failures = 3
failure_rate = 0.5
cool_down = "{cool_down}"
max_cool_down = "{cool_down}"
resume_rate = 1.0
"""


def _settings(url: str, home: Path, cool_down: str) -> Settings:
    config = home / "redrive.toml"
    config.write_text(BREAKER.format(cool_down=cool_down))
    return settings_for(url, home, config=config)


@pytest.mark.parametrize(
    ("attempts", "failures", "opens"), [(3, 3, True), (6, 3, True), (7, 3, False), (2, 2, False)]
)
def test_the_threshold_needs_enough_failures_and_a_high_enough_rate(
    attempts: int, failures: int, opens: bool
) -> None:
    """At least `min_failures` failed, and at least `failure_rate` of the window's attempts."""
    assert Breaker(min_failures=3, failure_rate=0.5).crossed(attempts, failures) is opens


def test_a_breaker_per_downstream_keys_on_the_named_field() -> None:
    """A URL counts by its host; another value by its text; no field, or no `per`, is the stage."""
    per_url = Breaker(per="url")
    assert downstream(per_url, {"url": "https://api.example.com:8443/hook?x=1"}) == "api.example.com"
    assert downstream(per_url, {"url": "queue-7"}) == "queue-7"
    assert downstream(per_url, {}) == ""
    assert downstream(Breaker(), {"url": "https://api.example.com"}) == ""
    assert Breaker().next_cool_down(timedelta(minutes=8)) == timedelta(minutes=10)
    ref = BreakerRef("webhook", "deliver", "api.example.com")
    assert ref.workflow_id("q1") == "breaker/q1/webhook/deliver/api.example.com"


@pytest.fixture
async def held_file(tmp_path: Path) -> Path:
    """The downstream is down while this file exists."""
    down = tmp_path / "down"
    down.touch()
    return down


def _failing(down: Path) -> dict[str, Any]:
    return {
        "type": "demo",
        "payload": {"fail": {"stage": "process", "error": "ServiceUnavailable", "while_exists": str(down)}},
    }


async def _breaker(http: httpx.AsyncClient, state: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get("/v1/breakers/demo/process")).json()
    return body if body["state"] == state else None


async def _attempts(client: Client, job_ids: list[str]) -> dict[str, tuple[bool, int] | None]:
    return {job_id: await paused_attempt(client, "default", job_id, "process") for job_id in job_ids}


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A worker and the API with the demo job type's `process` behind a breaker (4 s cool-down), on
    SQLite and on PostgreSQL."""
    settings = _settings(database_url, tmp_path, "4s")
    async with (
        running_worker(dev_env.client, settings),
        running_api(settings, dev_env.client) as url,
        httpx.AsyncClient(base_url=url, headers=A, timeout=60) as http,
    ):
        yield http


async def test_breaker_opens_pauses_probes_closes_and_releases_paced(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, held_file: Path
) -> None:
    """Four jobs fail at `process`: the third failure opens the breaker, every job's stage is paused
    (attempt counters stand still), a probe fails while the downstream is down and one succeeds once
    it is up; the breaker closes and the jobs complete one a second, none dead-lettered."""
    jobs = [(await api.post("/v1/jobs", json=_failing(held_file))).json()["id"] for _ in range(4)]
    opened = await eventually(functools.partial(_breaker, api, "open"), within=30)
    assert opened["by"] == "breaker", opened
    assert "attempts failed within" in opened["reason"], opened
    assert opened["failures"] >= 3

    async def all_paused() -> dict[str, tuple[bool, int] | None] | None:
        seen = await _attempts(dev_env.client, jobs)
        return seen if all(found is not None and found[0] for found in seen.values()) else None

    paused = await eventually(all_paused, within=30)
    held = (await api.get(f"/v1/jobs/{jobs[0]}")).json()["held_by_breaker"]
    assert held is not None
    assert (held["stage"], held["how"]) == ("process", "paused"), held
    await asyncio.sleep(2.5)  # more than the 1 s backoff: a retry would have run by now
    still = await _attempts(dev_env.client, jobs)
    assert still == paused, (paused, still)
    assert (await api.get("/v1/breakers/demo/process")).json()["waiting"] == 4

    # The cool-down (4 s) ends: one probe goes through, fails (still down), and the breaker reopens.
    probing = await eventually(functools.partial(_breaker, api, "half_open"), within=30)
    await eventually(functools.partial(_breaker, api, "open"), within=30)
    moved = [job for job, seen in (await _attempts(dev_env.client, jobs)).items() if seen != paused[job]]
    assert len(moved) <= 1, moved  # the probe's job only
    assert probing["probe_job_id"] in (None, *jobs)

    await asyncio.to_thread(
        held_file.unlink
    )  # the downstream recovers: the next probe succeeds and the breaker closes
    closed = await eventually(functools.partial(_breaker, api, "closed"), within=30)
    assert closed["reason"] == "probe succeeded", closed
    done = [await eventually(functools.partial(job_in, api, job, "complete"), within=30) for job in jobs]
    finished = sorted(job["finished_at"] for job in done)
    # Released at 1 a second (the probe's job first, on its own): the last ends ≥ 2 s after the first.
    spread = datetime.fromisoformat(finished[-1]) - datetime.fromisoformat(finished[0])
    assert spread.total_seconds() >= 2, finished
    assert all((job["dead_letters"], job["held_by_breaker"]) == ([], None) for job in done), done
    assert (await api.get("/v1/breakers/demo/process")).json()["waiting"] == 0


async def test_manual_open_holds_across_a_worker_restart_until_closed_by_hand(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, held_file: Path
) -> None:
    """One attempt only (`max_retries = 0`). A job's attempt is under way when an operator opens the
    breaker and fails after: it is not dead-lettered but waits in its workflow. A job submitted while
    it is open runs `prepare` (another stage is not held) and its `process` attempt pauses without
    calling the handler, the attempt given back (it has one left). The breaker stays open across a
    worker restart; closing it by hand lets both complete."""
    settings = _settings(sqlite_url, tmp_path, "1h")
    config = settings.config
    assert config is not None
    config.write_text(config.read_text().replace("max_retries = 3", "max_retries = 0"))
    slow_failure = {"sleep_ms": 3000, **_failing(held_file)["payload"]}
    async with (
        running_api(settings, dev_env.client) as url,
        httpx.AsyncClient(base_url=url, headers=A) as api,
    ):
        async with running_worker(dev_env.client, settings):
            missing = await api.post("/v1/breakers/demo/prepare/open", json={"reason": "x"})
            assert missing.status_code == 404, missing.text
            assert "demo/process" in missing.json()["detail"], missing.text
            bare = await api.post("/v1/breakers/demo/process/open", json={})
            assert bare.status_code == 422, bare.text
            assert "reason" in bare.text, bare.text
            first = (await api.post("/v1/jobs", json={"type": "demo", "payload": slow_failure})).json()["id"]
            await eventually(functools.partial(_at_stage, api, first, "process"), within=30)
            opened = await api.post("/v1/breakers/demo/process/open", json={"reason": "provider maintenance"})
            assert opened.status_code == 202, opened.text
            shown = await eventually(functools.partial(_breaker, api, "open"), within=30)
            assert (shown["manual"], shown["reason"]) == (True, "provider maintenance"), shown
            # The breaker's sweep pauses its stage; its one attempt then fails: it waits in its workflow.
            await eventually(functools.partial(_held, api, first, "waiting"), within=30)
            second = (await api.post("/v1/jobs", json={"type": "demo", "payload": {}})).json()["id"]
            held = await eventually(functools.partial(_held, api, second, "paused"), within=30)
            assert {s["name"]: s["status"] for s in held["stages"]}["prepare"] == "complete"

        async with running_worker(dev_env.client, settings):  # a new worker: the state is in the database
            assert (await _breaker(api, "open")) is not None
            await asyncio.sleep(1)
            for job in (first, second):
                assert (await _held(api, job)) is not None, job  # still held, not dead
            await asyncio.to_thread(held_file.unlink)
            closed = await api.post("/v1/breakers/demo/process/close", json={"reason": "maintenance over"})
            assert closed.status_code == 202, closed.text
            for job in (first, second):
                done = await eventually(functools.partial(job_in, api, job, "complete"), within=30)
                assert (done["dead_letters"], done["held_by_breaker"]) == ([], None), done
            shown = await eventually(functools.partial(_breaker, api, "closed"), within=30)
            assert (shown["manual"], shown["reason"], shown["waiting"]) == (False, "maintenance over", 0)
    errors = await _errors(sqlite_url, second)
    assert errors == [(1, "BreakerOpen")], errors  # the held attempt given back; attempt 2 went through


async def _errors(url: str, job_id: str) -> list[tuple[int, str]]:
    """Each failed attempt of the job's current run: its number and error type."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            repository = JobRepository(session)
            job = await repository.get("a", job_id)
            assert job is not None
            assert job.run_id is not None
            return [(f.attempt, f.error_type) for f in await repository.failures(job_id, job.run_id)]
    finally:
        await engine.dispose()


async def _at_stage(http: httpx.AsyncClient, job_id: str, stage: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
    return body if (body["status"], body["stage"]) == ("running", stage) else None


async def _held(http: httpx.AsyncClient, job_id: str, how: str | None = None) -> dict[str, Any] | None:
    """The job if a breaker holds it (`how`, when given: paused or waiting)."""
    body: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
    hold = body["held_by_breaker"]
    return body if hold is not None and how in (None, hold["how"]) else None


async def test_the_cli_opens_lists_and_closes_a_breaker_and_each_move_is_mailed(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """`redrive breakers open|list|show|close` over the API; the open and the close each send an
    e-mail saying who and why; an undeclared breaker exits 1 naming the ones that exist."""
    settings = _settings(sqlite_url, tmp_path, "1h").model_copy(update=mailbox.settings())
    async with api_client(dev_env.client, settings, {}) as http:
        env = {"REDRIVE_API_URL": str(http.base_url), "REDRIVE_API_KEY": "key-a"}
        missing = await redrive("breakers", "open", "demo", "finish", "--reason", "x", **env)
        assert missing.code == 1, missing
        assert "demo/process" in missing.err, missing
        opened = await redrive("breakers", "open", "demo", "process", "--reason", "INC-9", **env)
        assert opened.code == 0, opened

        async def listed(state: str) -> dict[str, Any] | None:
            shown = await redrive("breakers", "list", "-o", "json", **env)
            (only,) = shown.json()["items"]
            return only if only["state"] == state else None

        shown = await eventually(functools.partial(listed, "open"), within=30)
        assert (shown["reason"], shown["manual"]) == ("INC-9", True), shown
        assert shown["by"].startswith("a/"), shown  # tenant a's key
        table = await redrive("breakers", "list", **env)
        assert "INC-9" in table.out, table
        closed = await redrive("breakers", "close", "demo", "process", "--reason", "fixed", **env)
        assert closed.code == 0, closed
        await eventually(functools.partial(listed, "closed"), within=30)
        detail = (await redrive("breakers", "show", "demo", "process", "-o", "json", **env)).json()
        assert detail["declaration"]["min_failures"] == 3, detail

    subjects = [str(message["Subject"]) for message in mailbox.messages]
    assert subjects == ["[redrive] breaker open: demo/process", "[redrive] breaker closed: demo/process"]
    assert "INC-9" in str(mailbox.messages[0].get_body()), mailbox.messages[0]


async def test_one_probe_however_many_attempts_race_for_it(database_url: str) -> None:
    """Of ten attempts claiming a half-open breaker's probe at once, one wins (and wins again on a
    retry); a job held twice keeps its first `since`; the window counts from where it is asked."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    ref, now = BreakerRef("demo", "process"), datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            store = BreakerStore(session)
            await store.set_state(ref, HALF_OPEN, at=now, reason="cool-down over", actor="breaker")

        async def claim(job_id: str) -> bool:
            async with sessions() as session, session.begin():
                return await BreakerStore(session).claim_probe(ref, job_id)

        won = await asyncio.gather(*(claim(f"job-{n}") for n in range(10)))
        assert sum(won) == 1, won
        winner = f"job-{won.index(True)}"
        assert await claim(winner)
        async with sessions() as session, session.begin():
            store = BreakerStore(session)
            await store.hold(ref, "job-a", PAUSED, now)
            await store.hold(ref, "job-b", PAUSED, now + timedelta(seconds=1))
            await store.hold(ref, "job-a", WAITING, now + timedelta(seconds=2))
            for n, failed in enumerate((True, True, False)):
                await store.record_attempt(ref, f"job-{n}", failed=failed, at=now + timedelta(seconds=n))
        async with sessions() as session:
            store = BreakerStore(session)
            held = [(w.job_id, w.how, w.since) for w in await store.waiters(ref, 10)]
            assert held == [("job-a", WAITING, now), ("job-b", PAUSED, now + timedelta(seconds=1))]
            assert await store.waiting(ref) == 2
            assert await store.figures(ref, now) == Figures(attempts=3, failures=2)
            assert await store.figures(ref, now + timedelta(seconds=1)) == Figures(attempts=2, failures=1)
            state = await store.state(ref)
            assert state is not None
            assert (state.state, state.probe_job_id) == (HALF_OPEN, winner)
    finally:
        await engine.dispose()


async def test_a_breaker_per_downstream_holds_only_the_jobs_bound_for_the_failing_host(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """`per = "url"` keeps one breaker per host: 127.0.0.1 answering 503 opens its breaker and holds
    its jobs, while jobs to localhost (the same server, another host name) run and complete."""
    app = FastAPI()

    @app.post("/{answer}")
    async def hook(answer: str) -> Response:
        return Response(status_code=200 if answer == "up" else 503)

    config = tmp_path / "redrive.toml"
    config.write_text(
        '[job_types.webhook]\ninitial_interval = "1s"\nbackoff_coefficient = 1\nmax_retries = 3\n'
        '[job_types.webhook.stages.deliver.breaker]\nmin_failures = 3\ncool_down = "10m"\nper = "url"\n'
    )
    settings = settings_for(sqlite_url, tmp_path, config=config)
    async with serving(app) as url, api_client(dev_env.client, settings, A) as http:
        port = url.rsplit(":", 1)[1]

        async def submit(host: str, answer: str) -> str:
            body = {"type": "webhook", "payload": {"url": f"http://{host}:{port}/{answer}"}}
            created = await http.post("/v1/jobs", json=body)
            assert created.status_code == 202, created.text
            return str(created.json()["id"])

        down = [await submit("127.0.0.1", "down") for _ in range(4)]
        opened = await eventually(functools.partial(_keyed, http, "127.0.0.1", "open"), within=30)
        assert opened["key"] == "127.0.0.1", opened
        up = [await submit("localhost", "up") for _ in range(2)]
        for job in up:
            done = await eventually(functools.partial(job_in, http, job, "complete"), within=30)
            assert done["held_by_breaker"] is None, done
        for job in down:
            held = await eventually(functools.partial(_held, http, job), within=30)
            assert held["held_by_breaker"]["key"] == "127.0.0.1", held
        listed = (await http.get("/v1/breakers", params={"job_type": "webhook"})).json()["items"]
        assert [(b["key"], b["state"], b["waiting"]) for b in listed] == [("127.0.0.1", "open", 4)], listed


async def _keyed(http: httpx.AsyncClient, key: str, state: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get("/v1/breakers/webhook/deliver", params={"key": key})).json()
    return body if body["state"] == state else None


async def test_a_breaker_alert_is_mailed_and_posted_signed(mailbox: Mailbox) -> None:
    """An open breaker's alert goes to the e-mail recipients and, signed, to the alert webhook as
    `breaker_open`, with the reason and a link to the breaker (its downstream in the query)."""
    received: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.post("/alerts")
    async def alerts(request: Request) -> Response:
        body = await request.body()
        if request.headers.get(SIGNATURE_HEADER) != signature("s", request.headers[TIMESTAMP_HEADER], body):
            return Response(status_code=401)
        received.append(await request.json())
        return Response(status_code=204)

    at = datetime(2026, 12, 3, 9, tzinfo=UTC)
    alert = BreakerAlert("webhook", "deliver", "api.example.com", "open", "12 of 14 failed", "breaker", at)
    async with serving(receiver) as url, httpx.AsyncClient() as http:
        channels = mailbox.alert_settings().model_copy(
            update={"alert_webhook_url": f"{url}/alerts", "alert_webhook_secret": "s"}
        )
        await announce_breaker(http, alert, AlertConfig(channels, api_url="http://api.test"))
    link = "http://api.test/v1/breakers/webhook/deliver?key=api.example.com"
    (posted,) = received
    assert (posted["event"], posted["reason"], posted["breaker_url"]) == (
        "breaker_open",
        "12 of 14 failed",
        link,
    )
    (message,) = mailbox.messages
    assert message["Subject"] == "[redrive] breaker open: webhook/deliver (api.example.com)"
    assert link in str(message.get_body())


async def test_a_breaker_runs_on_the_operations_queue_and_one_on_the_jobs_queue_still_obeys(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """A breaker's workflow is not queued behind the jobs' tasks: it runs on the operations queue.
    One started on the jobs' queue (before breakers had that queue) still takes orders there."""
    settings = _settings(sqlite_url, tmp_path, "1h")
    ref = BreakerRef("demo", "process")
    stage, _ = declared(load_job_types(settings.job_types, settings.config), "demo", "process")
    handle = dev_env.client.get_workflow_handle(ref.workflow_id(settings.task_queue))
    async with (
        running_worker(dev_env.client, settings),
        running_api(settings, dev_env.client) as url,
        httpx.AsyncClient(base_url=url, headers=A) as api,
    ):
        await dev_env.client.start_workflow(
            BREAKER_WORKFLOW,
            breaker_input(ref, stage),
            id=handle.id,
            task_queue=settings.task_queue,
            start_signal=OPERATE_BREAKER,
            start_signal_args=[BreakerOrder(action="open", reason="opened before", actor="a/test")],
        )
        shown = await eventually(functools.partial(_breaker, api, "open"), within=30)
        assert shown["reason"] == "opened before", shown
        closed = await api.post("/v1/breakers/demo/process/close", json={"reason": "closed by hand"})
        assert closed.status_code == 202, closed.text
        await eventually(functools.partial(_breaker, api, "closed"), within=30)
        await handle.result()  # closed with nothing held: its workflow ends
        assert (await handle.describe()).task_queue == settings.task_queue

        opened = await api.post("/v1/breakers/demo/process/open", json={"reason": "maintenance"})
        assert opened.status_code == 202, opened.text
        shown = await eventually(functools.partial(_breaker, api, "open"), within=30)
        assert shown["reason"] == "maintenance", shown
        assert (await handle.describe()).task_queue == settings.operations_task_queue
        closed = await api.post("/v1/breakers/demo/process/close", json={"reason": "over"})
        assert closed.status_code == 202, closed.text
        await eventually(functools.partial(_breaker, api, "closed"), within=30)

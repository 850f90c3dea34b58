"""A burst of dead letters of one error fingerprint, recorded by two workers at once on the dev server,
sends exactly one e-mail per fingerprint; the digest counts the rest (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from redrive.activities import ActivityDeps
from redrive.activities.alerts import AlertConfig
from redrive.activities.maintenance import MaintenanceActivities
from redrive.contracts import MaintenanceInput
from redrive.converter import DATA_CONVERTER
from redrive.settings import Settings
from redrive.store import DeadLetter, create_engine, session_factory
from redrive.store.projection import GroupCommit
from redrive.store.types import utcnow
from tests.support import Mailbox, eventually, running_api, running_worker, serving, settings_for

A = {"Authorization": "Bearer key-a"}
BURST = {"process": ("CorruptedFile", 50), "finish": ("UnsupportedFormat", 10)}
"""Stage → (permanent error, jobs): two fingerprints, each job dead after one attempt."""


async def _unnotified(url: str) -> int | None:
    """How many dead letters still wait for their alert, once all of the burst's are recorded."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            total = (await session.exec(select(sa.func.count()).select_from(DeadLetter))).one()
            query = (
                select(sa.func.count()).select_from(DeadLetter).where(col(DeadLetter.notified_at).is_(None))
            )
            waiting = (await session.exec(query)).one()
    finally:
        await engine.dispose()
    expected = sum(count for _, count in BURST.values())
    return None if total < expected or waiting else 0


async def test_a_burst_of_one_failure_sends_one_email(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """60 jobs of two fingerprints die at once on two workers: one e-mail and one webhook call
    each, then one digest each counting the others."""
    hooks: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.post("/alerts")
    async def alert(request: Request) -> Response:
        hooks.append(await request.json())
        return Response(status_code=204)

    async with serving(receiver) as hook_url:
        channels = mailbox.alert_settings().model_copy(update={"alert_webhook_url": f"{hook_url}/alerts"})
        await _burst(dev_env, database_url, settings_for(database_url, tmp_path, alerts=channels))
    assert sorted(hook["stage"] for hook in hooks) == ["finish", "process"]
    subjects = sorted(str(message["Subject"]) for message in mailbox.messages)
    assert [subject.split(" (job ")[0] for subject in subjects] == [
        "[redrive] dead letter: demo/finish Validation",
        "[redrive] dead letter: demo/process Validation",
    ]

    digests = await _send_digests(database_url, mailbox)
    assert digests == 2
    digest_subjects = sorted(str(message["Subject"]) for message in mailbox.messages[2:])
    assert digest_subjects == [
        "[redrive] digest: 49 more dead letter(s) demo/process Validation",
        "[redrive] digest: 9 more dead letter(s) demo/finish Validation",
    ]


async def _burst(dev_env: WorkflowEnvironment, database_url: str, settings: Settings) -> None:
    """Two workers and the API; every job of `BURST` submitted at once; back once all are notified."""
    # A second worker needs a client of its own (the SDK allows one worker per queue per client).
    other = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=DATA_CONVERTER,
    )
    async with (
        running_worker(dev_env.client, settings),
        running_worker(other, settings),
        running_api(settings, dev_env.client) as url,
        httpx.AsyncClient(base_url=url, headers=A, timeout=60) as http,
    ):
        bodies = [
            {"type": "demo", "payload": {"fail": {"stage": stage, "error": error}}}
            for stage, (error, count) in BURST.items()
            for _ in range(count)
        ]
        answers = await asyncio.gather(*(http.post("/v1/jobs", json=body) for body in bodies))
        assert {answer.status_code for answer in answers} == {202}
        await eventually(lambda: _unnotified(database_url), within=120)


async def _send_digests(url: str, mailbox: Mailbox) -> int:
    """Run the maintenance pass's digest step two hours later (every window closed by then)."""
    engine = create_engine(url)
    try:
        async with httpx.AsyncClient() as http, GroupCommit(engine) as projection:
            deps = ActivityDeps(
                sessions=session_factory(engine),
                projection=projection,
                http=http,
                alerts=AlertConfig(mailbox.alert_settings()),
                now=lambda: utcnow() + timedelta(hours=2),
            )
            request = MaintenanceInput(
                task_queue="unused",
                archive_after=timedelta(days=7),
                purge_replayed_after=timedelta(days=30),
                reconcile_lookback=timedelta(days=2),
            )
            sent: int = await ActivityEnvironment().run(MaintenanceActivities(deps).send_digests, request)
            return sent
    finally:
        await engine.dispose()

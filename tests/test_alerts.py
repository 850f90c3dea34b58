"""Dead-letter alerts against a real SMTP server and a real webhook receiver: one e-mail per error
fingerprint per window, the rest counted into the next e-mail or a digest, idempotent per dead
letter, webhook signed with HMAC-SHA256, and a single warning when no channel is configured."""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from temporalio.testing import ActivityEnvironment

from redrive.activities import ActivityDeps
from redrive.activities.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertConfig, signature
from redrive.activities.maintenance import MaintenanceActivities
from redrive.activities.notifications import NotificationActivities, announce, warn_if_off
from redrive.contracts import MaintenanceInput, NotifyInput
from redrive.settings import AlertSettings
from redrive.store import DeadLetter, create_engine, session_factory
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.projection import GroupCommit
from redrive.store.types import utcnow
from tests.support import Mailbox, serving, smtp_server

SECRET = "hook-secret"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def _deps(
    sqlite_url: str, config: AlertConfig, clock: Callable[[], datetime]
) -> AsyncIterator[ActivityDeps]:
    engine = create_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        async with httpx.AsyncClient() as http, GroupCommit(engine) as projection:
            yield ActivityDeps(sessions=sessions, projection=projection, http=http, alerts=config, now=clock)
    finally:
        await engine.dispose()


async def _dead_letter(deps: ActivityDeps, job_id: str, message: str) -> str:
    async with deps.sessions() as session, session.begin():
        entry = await DeadLetterRepository(session).insert(
            DeadLetter(
                original_job_id=job_id,
                run_id=f"{job_id}-run",
                app_id="a",
                type="webhook",
                stage="deliver",
                error_reason="MaxRetries",
                error_type="ServiceUnavailable",
                error_message=message,
                attempts=4,
                dlq_at=deps.now(),
            )
        )
    return str(entry.id)


async def test_one_email_per_fingerprint_per_window(sqlite_url: str, mailbox: Mailbox) -> None:
    """First alike dead letter is e-mailed (and signed to the webhook), repeats within the hour are
    counted, the first after the hour carries the count; notifying twice sends once; a closed window's
    count is sent as a digest."""
    received: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.post("/alerts")
    async def alerts(request: Request) -> Response:
        body = await request.body()
        expected = signature(SECRET, request.headers[TIMESTAMP_HEADER], body)
        if request.headers.get(SIGNATURE_HEADER) != expected:
            return Response(status_code=401)
        received.append(await request.json())
        return Response(status_code=204)

    clock = Clock()
    async with serving(receiver) as url:
        channels = AlertSettings(
            smtp_host=mailbox.host,
            smtp_port=mailbox.port,
            alert_emails="ops@example.com",
            alert_webhook_url=f"{url}/alerts",
            alert_webhook_secret=SECRET,
            alert_window=timedelta(hours=1),
        )
        config = AlertConfig(channels)
        async with _deps(sqlite_url, config, clock) as deps:
            notify = NotificationActivities(deps).notify_dead_letter
            env = ActivityEnvironment()

            async def alert(job_id: str, message: str) -> str:
                entry_id = await _dead_letter(deps, job_id, message)
                result = await env.run(notify, NotifyInput(dead_letter_id=entry_id))
                return result.outcome

            assert await alert("job-1", "HTTP 503 from https://x.example/1") == "sent"
            first = await _dead_letter(deps, "job-1", "ignored")  # same run: the same entry
            assert (await env.run(notify, NotifyInput(dead_letter_id=first))).outcome == "already"
            clock.now += timedelta(minutes=10)
            assert await alert("job-2", "HTTP 502 from https://x.example/2") == "counted"
            assert await alert("job-3", "HTTP 500 from https://x.example/3") == "counted"
            assert await alert("job-9", "a different failure") == "sent"
            clock.now += timedelta(hours=1)
            assert await alert("job-4", "HTTP 503 from https://x.example/4") == "sent"
            clock.now += timedelta(minutes=5)
            assert await alert("job-5", "HTTP 503 from https://x.example/5") == "counted"
            clock.now += timedelta(hours=2)
            pass_ = MaintenanceInput(
                task_queue="unused",
                archive_after=timedelta(days=7),
                purge_replayed_after=timedelta(days=30),
                reconcile_lookback=timedelta(days=2),
            )
            assert await env.run(MaintenanceActivities(deps).send_digests, pass_) == 1
            assert await env.run(MaintenanceActivities(deps).send_digests, pass_) == 0

    subjects = [str(message["Subject"]) for message in mailbox.messages]
    assert [s.split(" (job ")[-1] for s in subjects[:3]] == ["job-1)", "job-9)", "job-4)"]
    assert "2 more dead letter(s) with this fingerprint" in mailbox.messages[2].get_content()
    assert subjects[3].startswith("[redrive] digest: 1 more dead letter(s) webhook/deliver MaxRetries")
    assert len(subjects) == 4
    assert [item["job_id"] for item in received] == ["job-1", "job-9", "job-4"]
    assert received[2]["digest"] == 2
    assert uuid.UUID(received[0]["dead_letter_id"])


def test_a_single_warning_when_notifications_are_off(caplog: pytest.LogCaptureFixture) -> None:
    """No SMTP and no webhook: one warning that says what to set; configured: none."""
    with caplog.at_level(logging.WARNING):
        warn_if_off(AlertConfig())
        warn_if_off(AlertConfig(AlertSettings(smtp_host="mail", alert_emails="ops@example.com")))
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "REDRIVE_SMTP_HOST" in warnings[0]


async def test_off_sends_nothing(sqlite_url: str) -> None:
    """Without any channel the activity does nothing and says so."""
    async with _deps(sqlite_url, AlertConfig(), utcnow) as deps:
        entry_id = await _dead_letter(deps, "job-off", "x")
        result = await ActivityEnvironment().run(
            NotificationActivities(deps).notify_dead_letter, NotifyInput(dead_letter_id=entry_id)
        )
    assert result.outcome == "off"


class RefusingMailbox(Mailbox):
    """A mailbox whose server refuses the first `refuse` messages, as a mail server that is down would."""

    refuse = 1

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        """Refuse, then accept."""
        if self.refuse > 0:
            self.refuse -= 1
            return "554 not now"
        return await super().handle_DATA(server, session, envelope)


def _pass() -> MaintenanceInput:
    return MaintenanceInput(
        task_queue="unused",
        archive_after=timedelta(days=7),
        purge_replayed_after=timedelta(days=30),
        reconcile_lookback=timedelta(days=2),
    )


async def test_a_refused_send_leaves_no_window_claimed(sqlite_url: str) -> None:
    """The SMTP server refuses the first alert: the window is given back, so the next dead letter of
    that fingerprint is e-mailed, and the refused one, tried again, is counted into the digest."""
    with smtp_server(RefusingMailbox) as mailbox:
        clock = Clock()
        config = AlertConfig(mailbox.alert_settings())
        async with _deps(sqlite_url, config, clock) as deps:
            env = ActivityEnvironment()
            notify = NotificationActivities(deps).notify_dead_letter
            first = await _dead_letter(deps, "job-1", "HTTP 503 from https://x.example/1")
            with pytest.raises(smtplib.SMTPDataError):
                await env.run(notify, NotifyInput(dead_letter_id=first))
            second = await _dead_letter(deps, "job-2", "HTTP 503 from https://x.example/2")
            assert (await env.run(notify, NotifyInput(dead_letter_id=second))).outcome == "sent"
            assert (await env.run(notify, NotifyInput(dead_letter_id=first))).outcome == "counted"
            clock.now += timedelta(hours=2)
            assert await env.run(MaintenanceActivities(deps).send_digests, _pass()) == 1
    subjects = [str(message["Subject"]) for message in mailbox.messages]
    assert len(subjects) == 2, subjects
    assert subjects[0].endswith("(job job-2)")
    assert subjects[1].startswith("[redrive] digest: 1 more dead letter(s)")


async def test_a_send_that_fails_for_good_is_counted_for_the_digest(sqlite_url: str) -> None:
    """On the activity's last try a refused alert counts its dead letter, so the digest reports it."""
    with smtp_server(RefusingMailbox) as mailbox:
        clock = Clock()
        config = AlertConfig(mailbox.alert_settings())
        async with _deps(sqlite_url, config, clock) as deps:
            entry = await _dead_letter(deps, "job-1", "HTTP 503 from https://x.example/1")
            with pytest.raises(smtplib.SMTPDataError):
                await announce(deps, uuid.UUID(entry), last_try=True)
            assert await announce(deps, uuid.UUID(entry)) == "already"
            assert await ActivityEnvironment().run(MaintenanceActivities(deps).send_digests, _pass()) == 1
    (digest,) = mailbox.messages
    assert str(digest["Subject"]).startswith("[redrive] digest: 1 more dead letter(s)")

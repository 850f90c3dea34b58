"""`notify_dead_letter`: e-mail and webhook alerts for a new dead letter, at most one e-mail per
error fingerprint per window (later ones are counted and reported in the next e-mail or digest).

Deciding to send claims the fingerprint's window in the same transaction (`AlertWindowRepository.
claim`), so however many dead letters of one fingerprint die at once, on however many workers,
one of them sends. A send that fails gives the claim back; on the activity's last attempt the dead
letter is counted instead, so the next alert or the digest reports it.

Idempotent per dead letter: `notified_at` is stamped after sending, and a retry of an activity that
already stamped it sends nothing. A crash between sending and stamping can send twice; the e-mail's
Message-ID is the dead letter's id so mail clients can tell.
"""

from __future__ import annotations

import logging
import uuid

import httpx
from temporalio import activity

from redrive.activities.alerts import Alert, AlertConfig, compose_email, post_webhook, send_email
from redrive.activities.deps import ActivityDeps
from redrive.contracts import NOTIFY_DEAD_LETTER, NotifyInput, NotifyResult
from redrive.store.alerts import AlertWindowRepository
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.models import DeadLetter
from redrive.store.tenancy import ALL_TENANTS

log = logging.getLogger(__name__)


class NotificationActivities:
    """Activities that tell people about dead letters."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=NOTIFY_DEAD_LETTER)
    async def notify_dead_letter(self, request: NotifyInput) -> NotifyResult:
        """Send (or count) the alert for one dead letter."""
        info = activity.info()
        limit = info.retry_policy.maximum_attempts if info.retry_policy else 0
        last = 0 < limit <= info.attempt
        return NotifyResult(outcome=await announce(self.deps, uuid.UUID(request.dead_letter_id), last))


async def announce(deps: ActivityDeps, entry_id: uuid.UUID, last_try: bool = True) -> str:
    """Alert about dead letter `entry_id`: `sent`, `counted` for a digest, `already` done, or `off`.

    A failed delivery raises; on the `last_try` the dead letter is counted for the digest first."""
    config = deps.alerts
    if not config.enabled:
        return "off"
    now = deps.now()
    async with deps.sessions() as session:
        entry = await DeadLetterRepository(session).get(ALL_TENANTS, entry_id)
    if entry is None or entry.notified_at is not None:
        return "already"
    # The claim is its transaction's first statement: on SQLite a transaction that has read before
    # it writes fails at once (SQLITE_BUSY_SNAPSHOT) when another connection wrote meanwhile.
    async with deps.sessions() as session, session.begin():
        claim = await AlertWindowRepository(session).claim(
            entry.fingerprint, entry.original_job_id, now, config.window
        )
        if not claim.send:
            await DeadLetterRepository(session).mark_notified(entry_id, now)
            deps.metrics.alerts.add(1, {"outcome": "counted"})
            return "counted"
    try:
        await deliver(deps.http, alert_for(entry, claim.digest), config)
    except Exception:
        async with deps.sessions() as session, session.begin():
            await AlertWindowRepository(session).release(entry.fingerprint, claim, count_it=last_try)
            if last_try:
                await DeadLetterRepository(session).mark_notified(entry_id, now)
        deps.metrics.alerts.add(1, {"outcome": "failed"})
        raise
    async with deps.sessions() as session, session.begin():
        await DeadLetterRepository(session).mark_notified(entry_id, now)
    deps.metrics.alerts.add(1, {"outcome": "sent"})
    return "sent"


async def deliver(http: httpx.AsyncClient, alert: Alert, config: AlertConfig) -> None:
    """Send `alert` on every configured channel."""
    if config.email_on:
        await send_email(compose_email(alert, config), config)
    if config.channels.alert_webhook_url:
        await post_webhook(http, alert, config)


def alert_for(entry: DeadLetter, digest: int) -> Alert:
    """The alert describing `entry`."""
    return Alert(
        dead_letter_id=str(entry.id),
        job_id=entry.original_job_id,
        run_id=entry.run_id,
        tenant_id=entry.app_id,
        job_type=entry.type,
        stage=entry.stage,
        reason=entry.error_reason,
        error_type=entry.error_type,
        error_message=entry.error_message,
        attempts=entry.attempts,
        fingerprint=entry.fingerprint,
        dlq_at=entry.dlq_at,
        digest=digest,
    )


def warn_if_off(config: AlertConfig) -> None:
    """One warning at start-up when dead letters will not be announced."""
    if not config.enabled:
        log.warning(
            "dead-letter notifications are off: set REDRIVE_SMTP_HOST and REDRIVE_ALERT_EMAILS "
            "(or REDRIVE_ALERT_WEBHOOK_URL) to be told about dead jobs"
        )

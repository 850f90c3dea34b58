"""`record_dead_letter`: stores a failed job in the dead-letter queue with its whole error history."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

from temporalio import activity

from redrive.activities.deps import ActivityDeps
from redrive.contracts import RECORD_DEAD_LETTER, DeadLetterInput, DeadLetterResult
from redrive.jobtypes.payloads import printable
from redrive.logs import job_fields
from redrive.status import JobStatus
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.engine import out_of_reach
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter, Job, StageFailure
from redrive.store.projection import ProjectionWrites

log = logging.getLogger(__name__)


class DeadLetterActivities:
    """Activities that write the dead-letter queue."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=RECORD_DEAD_LETTER)
    async def record_dead_letter(self, entry: DeadLetterInput) -> DeadLetterResult:
        """Insert the entry (once per run) and project `dead_letter`, in one transaction. Retried
        for as long as the database is out of reach; an entry it refuses `FALLBACK_AFTER` times is
        stored with its payload marked unstorable, so no job is kept from its dead letter."""
        try:
            return await store_dead_letter(self.deps, entry)
        except Exception as error:
            if out_of_reach(error) or activity.info().attempt < FALLBACK_AFTER:
                raise
            log.error(
                "the dead letter of job %s was refused %d times (%s: %s); storing it with its payload "
                "marked unstorable (the run's history in Temporal still holds it)",
                entry.job_id,
                activity.info().attempt,
                type(error).__name__,
                printable(str(error))[:500],
                extra=job_fields(job_id=entry.job_id, run_id=entry.run_id, job_type=entry.job_type),
            )
            return await store_dead_letter(self.deps, storable(entry, error))


FALLBACK_AFTER = 3
"""Attempts of `record_dead_letter` the database refuses (not: cannot be reached) before the entry
is stored in its storable form."""

UNSTORABLE = "redrive_unstorable"


def storable(entry: DeadLetterInput, error: BaseException) -> DeadLetterInput:
    """`entry` as every store holds it: the payload replaced by a marker saying why, and the error's
    text with NUL characters and lone surrogates replaced."""
    return dataclasses.replace(
        entry,
        payload={UNSTORABLE: f"the database refused the payload: {type(error).__name__}"},
        stage=printable(entry.stage),
        error_type=printable(entry.error_type),
        error_message=printable(entry.error_message),
    )


async def store_dead_letter(deps: ActivityDeps, entry: DeadLetterInput) -> DeadLetterResult:
    """Insert `entry` with its run's whole error history (once per run) and project `dead_letter`."""
    now = deps.now()
    async with deps.sessions() as session, session.begin():
        failures = await JobRepository(session).failures(entry.job_id, entry.run_id)
        stored = await DeadLetterRepository(session).insert(
            DeadLetter(
                original_job_id=entry.job_id,
                run_id=entry.run_id,
                app_id=entry.tenant_id,
                type=entry.job_type,
                stage=entry.stage,
                payload=entry.payload,
                error_reason=entry.error_reason.value,
                error_type=entry.error_type,
                error_message=entry.error_message,
                attempts=entry.attempts,
                error_history=error_history(failures, entry, now.isoformat()),
                dlq_at=now,
                reset_point=entry.reset_point,
            )
        )
        job = Job(
            id=entry.job_id,
            tenant_id=entry.tenant_id,
            type=entry.job_type,
            status=JobStatus.DEAD_LETTER.value,
            run_id=entry.run_id,
            payload=entry.payload,
            created_at=now,
            updated_at=now,
        )
        await ProjectionWrites(session).terminal(
            job,
            stage=entry.stage,
            attempt=entry.attempts,
            error_reason=entry.error_reason.value,
            error_type=entry.error_type,
            error_message=entry.error_message,
        )
    if abs(stored.dlq_at - now) < timedelta(milliseconds=1):  # stored now, not by an earlier try
        deps.metrics.dead_lettered.add(1, {"job_type": entry.job_type, "reason": entry.error_reason.value})
        log.error(
            "job %s dead-lettered in stage %s: %s after %d attempt(s): %s: %s (fingerprint %s)",
            entry.job_id,
            entry.stage,
            entry.error_reason.value,
            entry.attempts,
            entry.error_type,
            entry.error_message,
            stored.fingerprint,
            extra=job_fields(
                job_id=entry.job_id,
                run_id=entry.run_id,
                job_type=entry.job_type,
                stage=entry.stage,
                attempt=entry.attempts,
                tenant=entry.tenant_id,
            ),
        )
    return DeadLetterResult(dead_letter_id=str(stored.id), dlq_at=stored.dlq_at)


def error_history(failures: list[StageFailure], entry: DeadLetterInput, now_iso: str) -> list[dict[str, Any]]:
    """One `{attempt, error_type, message, timestamp}` per failed attempt of the run.

    When the failing attempt left no row (no handler ran, or the projection was down), the final
    error Temporal reported stands in for it, so the history is never empty.
    """
    history = [
        {
            "attempt": failure.attempt,
            "stage": failure.stage,
            "error_type": failure.error_type,
            "message": failure.message,
            "timestamp": failure.failed_at.isoformat(),
            "started_at": failure.started_at.isoformat(),
        }
        for failure in failures
    ]
    if not any(item["stage"] == entry.stage and item["attempt"] == entry.attempts for item in history):
        history.append(
            {
                "attempt": entry.attempts,
                "stage": entry.stage,
                "error_type": entry.error_type,
                "message": entry.error_message,
                "timestamp": now_iso,
            }
        )
    return history

"""Replaying a dead letter. A replay is a retry of the entry's job (see `retry`); many are replayed
by a campaign (see `campaigns`). Replays are idempotent: the reset's request id is the entry's, so
two racing requests make one new run, and an entry is stamped `replayed_at` once."""

from __future__ import annotations

import uuid

from redrive.operations.errors import Conflict, NotFound
from redrive.operations.retry import RetryOrder, RetryOutcome, retry_job
from redrive.operations.services import Actor, Services
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter, Job

SAMPLE = 10


async def replay_one(
    services: Services, actor: Actor, entry_id: uuid.UUID, order: RetryOrder
) -> RetryOutcome:
    """Replay the actor's entry: `NotFound` if unknown, `Conflict` if replayed or its job moved on."""
    async with services.sessions() as session:
        entry = await DeadLetterRepository(session).get(actor.tenant, entry_id)
    if entry is None:
        raise NotFound("Dead letter not found", f"no dead letter {entry_id} for this API key")
    return await replay_entry(services, actor, entry, order)


async def replay_entry(
    services: Services, actor: Actor, entry: DeadLetter, order: RetryOrder
) -> RetryOutcome:
    """Replay `entry`: `Conflict` if it was replayed or its job has run again since."""
    async with services.sessions() as session:
        job = await JobRepository(session).get(actor.tenant, entry.original_job_id)
    return await retry_job(services, actor, check_entry(entry, job), entry, order)


def check_entry(entry: DeadLetter, job: Job | None) -> Job:
    """The job `entry` would replay: `Conflict` if it was replayed or its job has run again since."""
    if entry.replayed_at is not None:
        raise Conflict(
            "Already replayed", f"dead letter {entry.id} was replayed at {entry.replayed_at.isoformat()}"
        )
    if job is None or job.run_id != entry.run_id:
        raise Conflict(
            "Job moved on",
            f"job {entry.original_job_id} has run again since this entry was recorded; see the job",
        )
    return job


async def preview(services: Services, actor: Actor, where: DeadLetterFilter) -> tuple[int, list[DeadLetter]]:
    """How many of the actor's pending entries match `where`, and the newest few (a dry run)."""
    where = DeadLetterFilter(**{**vars(where), "app_id": actor.tenant, "pending": True})
    async with services.sessions() as session:
        repository = DeadLetterRepository(session)
        return await repository.count(where), await repository.search(where, SAMPLE)

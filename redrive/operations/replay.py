"""Replaying dead letters, one or many. A replay is a retry of the entry's job (see `retry`); a bulk
replay takes the actor's pending entries matching a filter, paced to a rate, and reports each one.
Replays are idempotent: the reset's request id is the entry's, so two racing requests make one new
run, and an entry is stamped `replayed_at` once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Literal

from redrive.operations.errors import Conflict, NotFound, OperationError
from redrive.operations.retry import RetryOrder, RetryOutcome, retry_job
from redrive.operations.services import Actor, Services
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter

SAMPLE = 10
CONCURRENCY = 16
"""Replays in flight at once: each is a history read and a reset, mostly waiting on Temporal."""


@dataclass(frozen=True)
class BulkReplayOrder:
    """Which pending entries to replay (`where`), how many and how fast, and why."""

    where: DeadLetterFilter
    max: int = 100
    rate: float | None = None
    """Replays per second; the `replay_rate` setting when None."""
    reason: str | None = None
    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class ReplayItem:
    """What a bulk replay did with one entry."""

    dead_letter_id: uuid.UUID
    job_id: str
    outcome: Literal["reset", "resubmitted", "continued", "skipped", "failed"]
    run_id: str | None = None
    detail: str | None = None
    job_type: str = ""


@dataclass(frozen=True)
class BulkReplayOutcome:
    """How many entries matched, a sample of them, and one item per entry taken."""

    dry_run: bool
    matched: int
    sample: list[DeadLetter]
    results: list[ReplayItem] = field(default_factory=list)

    def count(self, *outcomes: str) -> int:
        """How many items ended in one of `outcomes`."""
        return sum(item.outcome in outcomes for item in self.results)


async def replay_one(
    services: Services, actor: Actor, entry_id: uuid.UUID, order: RetryOrder
) -> RetryOutcome:
    """Replay the actor's entry: `NotFound` if unknown, `Conflict` if replayed or its job moved on."""
    async with services.sessions() as session:
        entry = await DeadLetterRepository(session).get(actor.tenant, entry_id)
    if entry is None:
        raise NotFound("Dead letter not found", f"no dead letter {entry_id} for this API key")
    return await _replay(services, actor, entry, order)


async def _replay(services: Services, actor: Actor, entry: DeadLetter, order: RetryOrder) -> RetryOutcome:
    if entry.replayed_at is not None:
        raise Conflict(
            "Already replayed", f"dead letter {entry.id} was replayed at {entry.replayed_at.isoformat()}"
        )
    async with services.sessions() as session:
        job = await JobRepository(session).get(actor.tenant, entry.original_job_id)
    if job is None or job.run_id != entry.run_id:
        raise Conflict(
            "Job moved on",
            f"job {entry.original_job_id} has run again since this entry was recorded; see the job",
        )
    return await retry_job(services, actor, job, entry, order)


async def replay_many(services: Services, actor: Actor, order: BulkReplayOrder) -> BulkReplayOutcome:
    """Dry run: count and sample. Otherwise replay up to `max` matching entries at `rate` per second."""
    where = DeadLetterFilter(**{**vars(order.where), "app_id": actor.tenant, "pending": True})
    async with services.sessions() as session:
        repository = DeadLetterRepository(session)
        matched = await repository.count(where)
        entries = await repository.search(where, SAMPLE if order.dry_run else order.max)
    if order.dry_run:
        return BulkReplayOutcome(dry_run=True, matched=matched, sample=entries[:SAMPLE])
    retry = RetryOrder(reason=order.reason, force=order.force, action="replay")
    rate = order.rate or services.settings.replay_rate
    results = await _paced(services, actor, entries, retry, rate)
    return BulkReplayOutcome(dry_run=False, matched=matched, sample=entries[:SAMPLE], results=results)


async def _paced(
    services: Services, actor: Actor, entries: list[DeadLetter], order: RetryOrder, rate: float
) -> list[ReplayItem]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(position: int, entry: DeadLetter) -> ReplayItem:
        await asyncio.sleep(max(0.0, start + position / rate - loop.time()))
        async with gate:
            return await _item(services, actor, entry, order)

    return list(await asyncio.gather(*(one(i, entry) for i, entry in enumerate(entries))))


async def _item(services: Services, actor: Actor, entry: DeadLetter, order: RetryOrder) -> ReplayItem:
    try:
        done = await _replay(services, actor, entry, order)
    except (NotFound, Conflict) as refused:  # nothing to do for this entry: say why
        return ReplayItem(
            entry.id, entry.original_job_id, "skipped", detail=refused.detail, job_type=entry.type
        )
    except OperationError as error:
        return ReplayItem(entry.id, entry.original_job_id, "failed", detail=error.detail, job_type=entry.type)
    except Exception as error:  # one entry's trouble must not abort the others; report it instead
        detail = f"{type(error).__name__}: {error}"[:500]
        return ReplayItem(entry.id, entry.original_job_id, "failed", detail=detail, job_type=entry.type)
    return ReplayItem(entry.id, entry.original_job_id, done.mode, run_id=done.run_id, job_type=entry.type)

"""Replaying dead letters, one or many. A replay is a retry of the entry's job (see `api.retries`);
a bulk replay takes the caller's pending entries matching a filter, paced to a rate, and reports
each one. Replays are idempotent: the reset's request id is the entry's, so two racing requests
make one new run, and an entry is stamped `replayed_at` once."""

from __future__ import annotations

import asyncio
import uuid

from api.deps import Caller
from api.problems import Problem
from api.retries import RetryOrder, retry_job
from api.schemas import BulkReplayPublic, BulkReplayRequest, ReplayItem, ReplayRequest, RetryPublic
from api.state import AppState
from api.views import dead_letter_view
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter
from redrive.store.types import utcnow

SAMPLE = 10
CONCURRENCY = 16
"""Replays in flight at once: each is a history read and a reset, mostly waiting on Temporal."""


async def replay_one(
    state: AppState, caller: Caller, entry_id: uuid.UUID, request: ReplayRequest
) -> RetryPublic:
    """Replay the caller's entry; 404 if unknown, 409 if already replayed or its job moved on."""
    async with state.sessions() as session:
        entry = await DeadLetterRepository(session).get(caller.tenant, entry_id)
    if entry is None:
        raise Problem(404, "Dead letter not found", f"no dead letter {entry_id} for this API key")
    order = RetryOrder(request.from_stage, request.reason, request.force, action="replay")
    return await _replay(state, caller, entry, order)


async def _replay(state: AppState, caller: Caller, entry: DeadLetter, order: RetryOrder) -> RetryPublic:
    if entry.replayed_at is not None:
        raise Problem(
            409, "Already replayed", f"dead letter {entry.id} was replayed at {entry.replayed_at.isoformat()}"
        )
    async with state.sessions() as session:
        job = await JobRepository(session).get(caller.tenant, entry.original_job_id)
    if job is None or job.run_id != entry.run_id:
        raise Problem(
            409,
            "Job moved on",
            f"job {entry.original_job_id} has run again since this entry was recorded; see the job",
        )
    return await retry_job(state, caller, job, entry, order)


async def replay_many(state: AppState, caller: Caller, request: BulkReplayRequest) -> BulkReplayPublic:
    """Dry run: count and sample. Otherwise replay up to `max` matching entries at `rate` per second."""
    f = request.filter
    where = DeadLetterFilter(
        caller.tenant,
        type=f.type,
        reason=f.reason.value if f.reason else None,
        pending=True,
        stage=f.stage,
        fingerprint=f.fingerprint,
        dlq_before=f.dlq_before,
        dlq_after=f.dlq_after,
    )
    async with state.sessions() as session:
        repository = DeadLetterRepository(session)
        matched = await repository.count(where)
        entries = await repository.search(where, SAMPLE if request.dry_run else request.max)
    now = utcnow()
    sample = [dead_letter_view(state.settings, entry, now) for entry in entries[:SAMPLE]]
    results: list[ReplayItem] = []
    if not request.dry_run:
        order = RetryOrder(reason=request.reason, force=request.force, action="replay")
        results = await _paced(state, caller, entries, order, request.rate or state.settings.replay_rate)
    return BulkReplayPublic(
        dry_run=request.dry_run,
        matched=matched,
        sample=sample,
        results=results,
        replayed=sum(item.outcome in ("reset", "resubmitted") for item in results),
        skipped=sum(item.outcome == "skipped" for item in results),
        failed=sum(item.outcome == "failed" for item in results),
    )


async def _paced(
    state: AppState, caller: Caller, entries: list[DeadLetter], order: RetryOrder, rate: float
) -> list[ReplayItem]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(position: int, entry: DeadLetter) -> ReplayItem:
        await asyncio.sleep(max(0.0, start + position / rate - loop.time()))
        async with gate:
            return await _item(state, caller, entry, order)

    return list(await asyncio.gather(*(one(i, entry) for i, entry in enumerate(entries))))


async def _item(state: AppState, caller: Caller, entry: DeadLetter, order: RetryOrder) -> ReplayItem:
    try:
        done = await _replay(state, caller, entry, order)
    except Problem as problem:
        outcome = "skipped" if problem.status in (404, 409) else "failed"
        return ReplayItem(
            dead_letter_id=entry.id, job_id=entry.original_job_id, outcome=outcome, detail=problem.detail
        )
    except Exception as error:  # one entry's trouble must not abort the others; report it instead
        detail = f"{type(error).__name__}: {error}"[:500]
        return ReplayItem(
            dead_letter_id=entry.id, job_id=entry.original_job_id, outcome="failed", detail=detail
        )
    return ReplayItem(
        dead_letter_id=entry.id, job_id=entry.original_job_id, outcome=done.mode, run_id=done.run_id
    )

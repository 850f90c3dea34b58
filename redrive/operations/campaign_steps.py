"""One step of a replay campaign: up to 250 entries replayed with the checks, claims and
records of single replays (`replay`, `retry`), but with the database work done in bulk: the step's
entries and jobs read in one query each, their dead runs claimed in one statement (the claims
renewed until recorded) and their new runs recorded 32 at a time, so the step's time goes to
the resets, run side by side.

An entry the campaign already replayed (an earlier try of the same step, cut off) counts as the
replay it was; one whose job another retry holds, or that continues in a new run rather than by a
reset (a local stage), is replayed on its own afterwards, as a single replay would be."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from redrive.contracts import CampaignItem, ReplayedEntries, ReplayEntries
from redrive.operations.campaigns import CONCURRENCY, MODES, stamp_modes
from redrive.operations.errors import Busy, Conflict, NotFound, OperationError
from redrive.operations.replay import check_entry, replay_entry
from redrive.operations.retry import (
    CLAIM_LEASE,
    Restarted,
    RetryOrder,
    RetryOutcome,
    Taken,
    check_retry,
    claim_many,
    record_many,
    restart_claimed,
)
from redrive.operations.services import Actor, Services
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter
from redrive.store.projection import ProjectionWrites
from redrive.store.types import utcnow

log = logging.getLogger(__name__)

BEAT_EVERY = 3.0
RECORD_EVERY = CONCURRENCY
"""Restarts recorded in one transaction: few enough that recording overlaps the next restarts."""
BUSY_POLL = 0.1
"""Seconds between looks at the entries whose jobs another retry holds (one query for a step's)."""
HELD_PAST_LEASE = "another retry held the job past the claim's lease"
IN_FLIGHT = 2 * CONCURRENCY
"""Replays of one campaign in flight at once in a worker process, whichever of its steps they
belong to (a campaign runs two steps at a time)."""


class CampaignGates:
    """One gate of `IN_FLIGHT` per campaign, shared by its steps in this worker process: as a step's
    last replays finish, the step beside it takes their places, so the replays do not dip while the
    workflow starts the next step, and a campaign's last step ends at the speed of two."""

    def __init__(self) -> None:
        # A gate lives as long as a step of its campaign holds it.
        self._gates: weakref.WeakValueDictionary[str, asyncio.Semaphore] = weakref.WeakValueDictionary()

    def __call__(self, campaign_id: str) -> asyncio.Semaphore:
        gate = self._gates.get(campaign_id)
        if gate is None:
            gate = self._gates[campaign_id] = asyncio.Semaphore(IN_FLIGHT)
        return gate


async def replay_entries(
    services: Services,
    request: ReplayEntries,
    beat: Callable[[], None] = lambda: None,
    gate: asyncio.Semaphore | None = None,
) -> ReplayedEntries:
    """Replay each entry of the step once (heartbeating with `beat`), as many at once as `gate`
    lets through (the campaign's, see `CampaignGates`; the step's own of `IN_FLIGHT` if None)."""
    actor = Actor(request.tenant_id, request.actor)
    order = RetryOrder(
        reason=request.reason, force=request.force, action="replay", campaign=request.campaign_id
    )
    gate = gate or asyncio.Semaphore(IN_FLIGHT)

    async def alone(entry_id: uuid.UUID) -> CampaignItem:
        async with gate:
            return await _alone(services, actor, entry_id, order)

    loop = asyncio.get_running_loop()
    async with _beating(beat):
        step = await _together(services, actor, [uuid.UUID(i) for i in request.entry_ids], order, gate)
        items, held = step.items, step.held
        # Entries another retry holds (a racing campaign, mostly) wait until it has recorded them
        # or its claim has lapsed (see `CLAIM_LEASE`): one query a look, the rest for those let go.
        deadline = loop.time() + CLAIM_LEASE.total_seconds() + 5
        while held and loop.time() < deadline:
            await asyncio.sleep(BUSY_POLL)
            async with services.sessions() as session:
                still = await DeadLetterRepository(session).still_held(
                    actor.tenant, list(held), utcnow() - CLAIM_LEASE
                )
            let_go = [entry_id for entry_id in held if entry_id not in still]
            if let_go:
                again = await _together(services, actor, let_go, order, gate)
                items += again.items
                held = {entry_id: held[entry_id] for entry_id in still} | again.held
                step.alone.extend(again.alone)
        items += await asyncio.gather(*(alone(entry_id) for entry_id in step.alone))
    items += [_skipped_held(entry_id, job_id) for entry_id, job_id in held.items()]
    outcomes = (*MODES, "skipped", "failed")
    count = {outcome: sum(item.outcome == outcome for item in items) for outcome in outcomes}
    return ReplayedEntries(
        replayed=count["reset"] + count["continued"],
        resubmitted=count["resubmitted"],
        skipped=count["skipped"],
        failed=count["failed"],
        problems=tuple(item for item in items if item.outcome in ("skipped", "failed")),
    )


@dataclass
class _Step:
    """What a pass over a step's entries did (`items`), and the entries it left: those another
    retry holds, and those to replay one by one (they continue in a new run, not by a reset)."""

    items: list[CampaignItem] = field(default_factory=list)
    held: dict[uuid.UUID, str] = field(default_factory=dict)
    """By entry, its job's id."""
    alone: list[uuid.UUID] = field(default_factory=list)


async def _together(
    services: Services,
    actor: Actor,
    entry_ids: Sequence[uuid.UUID],
    order: RetryOrder,
    gate: asyncio.Semaphore,
) -> _Step:
    """Replay by a reset every entry that allows it, claimed at once, as many at a time as `gate`
    lets through, and recorded `RECORD_EVERY` at a time: what became of each, and the entries left
    (held by another retry, or to replay alone)."""
    async with services.sessions() as session:
        entries = await DeadLetterRepository(session).get_many(actor.tenant, entry_ids)
        job_ids = [entry.original_job_id for entry in entries.values()]
        jobs = await JobRepository(session).get_many(actor.tenant, job_ids)
    step = _Step()
    takes: list[Taken] = []
    for entry_id in entry_ids:
        entry = entries.get(entry_id)
        if entry is None:
            step.items.append(_purged(entry_id))
        elif replayed := _ours(entry, order):
            step.items.append(replayed)
        else:
            try:
                job = check_entry(entry, jobs.get(entry.original_job_id))
                taken = check_retry(services, job, entry, order)
            except Busy:
                step.held[entry_id] = entry.original_job_id
            except OperationError as refused:
                step.items.append(_refused(entry, refused))
            else:
                if taken.continues:
                    step.alone.append(entry_id)
                else:
                    takes.append(taken)
    won = await claim_many(services, takes)
    claimed = {taken.job.id for taken in won}
    for taken in takes:
        if taken.job.id not in claimed and taken.entry is not None:
            step.held[taken.entry.id] = taken.job.id
    unrecorded = {(taken.job.id, taken.dead_run) for taken in won}

    async def restart(taken: Taken) -> Restarted | CampaignItem:
        assert taken.entry is not None  # a campaign replays entries
        async with gate:
            try:
                return await restart_claimed(services, actor, taken, order)
            except Exception as error:  # one entry's trouble must not stop the others: report it
                unrecorded.discard((taken.job.id, taken.dead_run))  # given back
                return _failed(taken.entry, error)

    async def restart_and_record(chunk: Sequence[Taken]) -> list[CampaignItem]:
        restarted = await asyncio.gather(*(restart(taken) for taken in chunk))
        done = [outcome for outcome in restarted if isinstance(outcome, Restarted)]
        await record_many(services, actor, order, done)
        unrecorded.difference_update((r.job.id, r.dead_run) for r in done)
        failed = [outcome for outcome in restarted if isinstance(outcome, CampaignItem)]
        return failed + [_item(r.entry, r.how.mode) for r in done if r.entry is not None]

    chunks = [won[begin : begin + RECORD_EVERY] for begin in range(0, len(won), RECORD_EVERY)]
    async with _renewing(services, unrecorded):
        for chunk_items in await asyncio.gather(*(restart_and_record(chunk) for chunk in chunks)):
            step.items += chunk_items
    return step


@contextlib.asynccontextmanager
async def _renewing(services: Services, claims: set[tuple[str, str]]) -> AsyncIterator[None]:
    """Renew the step's `claims` (job id, dead run) not yet recorded every `BEAT_EVERY` seconds for
    the duration of the block: a claim older than `CLAIM_LEASE` reads as abandoned, and another
    retry may take it over, so a step's last entries must not look abandoned while they wait their
    turn. If the worker dies, the renewals stop and the claims lapse."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(BEAT_EVERY)
            try:
                async with services.sessions() as session, session.begin():
                    await ProjectionWrites(session).renew_claims(sorted(claims), utcnow())
            except Exception:  # the next renewal may get through; the lease allows a few misses
                log.warning("could not renew %d claims", len(claims), exc_info=True)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()


@contextlib.asynccontextmanager
async def _beating(beat: Callable[[], None]) -> AsyncIterator[None]:
    """Call `beat` every `BEAT_EVERY` seconds for the duration of the block (a step's entries may
    wait for another retry's claim to lapse)."""

    async def pulse() -> None:
        while True:
            beat()
            await asyncio.sleep(BEAT_EVERY)

    task = asyncio.create_task(pulse())
    try:
        yield
    finally:
        task.cancel()


async def _alone(services: Services, actor: Actor, entry_id: uuid.UUID, order: RetryOrder) -> CampaignItem:
    """Replay one entry as a single replay would, waiting while another retry holds its job."""
    async with services.sessions() as session:
        entry = await DeadLetterRepository(session).get(actor.tenant, entry_id)
    if entry is None:
        return _purged(entry_id)
    try:
        done = await _replay_when_free(services, actor, entry, order)
    except Busy:
        return _item(entry, "skipped", HELD_PAST_LEASE)
    except OperationError as refused:
        return _ours(entry, order) or _refused(entry, refused)
    except Exception as error:
        return _failed(entry, error)
    return _item(entry, done.mode)


async def _replay_when_free(
    services: Services, actor: Actor, entry: DeadLetter, order: RetryOrder
) -> RetryOutcome:
    """Replay `entry`, waiting while another retry holds its job: that one either records its run
    within moments (then this is `Already replayed`) or died on the way, and its claim lapses
    after `CLAIM_LEASE` (a step of this campaign cut off by its worker's death, for one)."""
    deadline = asyncio.get_running_loop().time() + CLAIM_LEASE.total_seconds() + 5
    while True:
        try:
            return await replay_entry(services, actor, entry, order)
        except Busy:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(BUSY_POLL)
        async with services.sessions() as session:
            entry = await DeadLetterRepository(session).get(actor.tenant, entry.id) or entry


def _ours(entry: DeadLetter, order: RetryOrder) -> CampaignItem | None:
    """The entry as this campaign replayed it (an earlier try of the step), if it did."""
    mode = stamp_modes(order.campaign or "").get(entry.request_id or "")
    return _item(entry, mode) if entry.replayed_at is not None and mode else None


def _item(entry: DeadLetter, outcome: str, detail: str | None = None) -> CampaignItem:
    return CampaignItem(
        dead_letter_id=str(entry.id), job_id=entry.original_job_id, outcome=outcome, detail=detail
    )


def _skipped_held(entry_id: uuid.UUID, job_id: str) -> CampaignItem:
    return CampaignItem(
        dead_letter_id=str(entry_id),
        job_id=job_id,
        outcome="skipped",
        detail=HELD_PAST_LEASE,
    )


def _purged(entry_id: uuid.UUID) -> CampaignItem:
    return CampaignItem(dead_letter_id=str(entry_id), job_id="", outcome="skipped", detail="entry purged")


def _refused(entry: DeadLetter, refused: OperationError) -> CampaignItem:
    """Nothing to do for this entry (`NotFound`, `Conflict`: skipped), or it could not be done."""
    outcome = "skipped" if isinstance(refused, NotFound | Conflict) else "failed"
    return _item(entry, outcome, refused.detail)


def _failed(entry: DeadLetter, error: Exception) -> CampaignItem:
    return _item(entry, "failed", f"{type(error).__name__}: {error}"[:500])

"""`/v1/dead-letters`: the dead-letter queue — list, show, group, replay one or many."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from redrive.api.cursors import decode_cursor, encode_cursor
from redrive.api.deps import OperateDep, ReadDep, SessionDep, StateDep
from redrive.api.problems import Problem
from redrive.api.views import campaign_order, dead_letter_view
from redrive.operations import RetryOrder, campaign_outcome, preview, replay_one, start_campaign
from redrive.operations.campaigns import pending_filter
from redrive.schemas import (
    MAX_PAGE,
    PROBLEMS,
    BulkReplayPublic,
    BulkReplayRequest,
    DeadLetterGroupPage,
    DeadLetterGroupPublic,
    DeadLetterPage,
    DeadLetterPublic,
    IsoTime,
    ReplayItem,
    ReplayRequest,
    RetryPublic,
)
from redrive.status import ErrorReason
from redrive.store.archival import ArchiveRule
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], responses=PROBLEMS)


@router.get("", summary="List dead letters")
async def list_dead_letters(
    state: StateDep,
    caller: ReadDep,
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=64)] = None,
    reason: ErrorReason | None = None,
    stage: Annotated[str | None, Query(max_length=64)] = None,
    fingerprint: Annotated[str | None, Query(max_length=64)] = None,
    pending: bool | None = None,
    dlq_before: IsoTime | None = None,
    dlq_after: IsoTime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DeadLetterPage:
    """Newest first; `pending=true` shows only entries not replayed yet."""
    reason_value = reason.value if reason else None
    where = DeadLetterFilter(
        caller.tenant, type, reason_value, pending, stage, fingerprint, dlq_before, dlq_after
    )
    after = _entry_cursor(cursor) if cursor else None
    entries = await DeadLetterRepository(session).search(where, limit + 1, after)
    more, entries = len(entries) > limit, entries[:limit]
    archive = ArchiveRule.after(state.settings.archive_after)
    return DeadLetterPage(
        items=[dead_letter_view(entry, archive) for entry in entries],
        next_cursor=encode_cursor(entries[-1].dlq_at, str(entries[-1].id)) if more else None,
    )


@router.get("/groups", summary="Group dead letters by error fingerprint")
async def list_groups(
    caller: ReadDep,
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=64)] = None,
    pending: bool = True,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> DeadLetterGroupPage:
    """Entries that failed the same way (job type, stage, error type, message shape), largest first,
    with counts, first and last seen and a sample; replay a group with `filter.fingerprint`."""
    groups = await DeadLetterRepository(session).groups(
        DeadLetterFilter(caller.tenant, type, pending=pending), limit
    )
    return DeadLetterGroupPage(items=[DeadLetterGroupPublic(**vars(group)) for group in groups])


@router.post("/replay", summary="Replay dead letters in bulk, and wait")
async def bulk_replay(body: BulkReplayRequest, state: StateDep, caller: OperateDep) -> BulkReplayPublic:
    """Run a replay campaign (see `POST /v1/replays`) and answer when it has ended: every entry it
    replayed, and the last 100 it skipped or failed. With `dry_run` only count and sample. Prefer
    `POST /v1/replays` for anything that takes longer than an HTTP request should."""
    order = campaign_order(body)
    archive = ArchiveRule.after(state.settings.archive_after)
    matched, sample = await preview(state, caller.actor, pending_filter(caller.tenant, order.where))
    if body.dry_run or matched == 0:  # nothing to replay needs no campaign (nor a worker)
        return BulkReplayPublic(
            dry_run=body.dry_run,
            matched=matched,
            sample=[dead_letter_view(entry, archive) for entry in sample],
            results=[],
            replayed=0,
            skipped=0,
            failed=0,
        )
    request = await start_campaign(state, caller.actor, order)
    done, replayed = await campaign_outcome(state, request)
    progress = done.progress
    results = [
        ReplayItem(
            dead_letter_id=item.entry.id,
            job_id=item.entry.original_job_id,
            outcome=item.mode,
            run_id=item.run_id,
        )
        for item in replayed
    ] + [ReplayItem.model_validate(vars(problem)) for problem in progress.problems]
    for item in replayed:
        state.metrics.replays.labels(item.entry.type, item.mode).inc()
    return BulkReplayPublic(
        dry_run=False,
        matched=progress.matched,
        sample=[],
        results=results,
        replayed=progress.replayed + progress.resubmitted,
        skipped=progress.skipped,
        failed=progress.failed,
        campaign_id=request.campaign_id,
    )


@router.api_route("/replay", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def replay_other_methods() -> None:
    """`/replay` is not a dead letter's id: other methods get 405, not a complaint about the id."""
    raise Problem(405, "Method Not Allowed", "use POST /v1/dead-letters/replay", headers={"Allow": "POST"})


@router.get("/{entry_id}", summary="Show a dead letter")
async def get_dead_letter(
    entry_id: uuid.UUID, state: StateDep, caller: ReadDep, session: SessionDep
) -> DeadLetterPublic:
    """The entry with its payload and whole error history."""
    entry = await DeadLetterRepository(session).get(caller.tenant, entry_id)
    if entry is None:
        raise Problem(404, "Dead letter not found", f"no dead letter {entry_id} for this API key")
    return dead_letter_view(entry, ArchiveRule.after(state.settings.archive_after))


@router.post("/{entry_id}/replay", summary="Replay a dead letter")
async def replay(
    entry_id: uuid.UUID, state: StateDep, caller: OperateDep, body: ReplayRequest | None = None
) -> RetryPublic:
    """Reset the dead run from the failed stage when its history exists, else start a new run from the
    stored payload; `mode` says which. 409 if already replayed or past the replay limit."""
    request = body or ReplayRequest()
    order = RetryOrder(
        request.from_stage,
        request.reason,
        request.force,
        action="replay",
        payload_patch=request.payload_patch,
    )
    outcome = await replay_one(state, caller.actor, entry_id, order)
    state.metrics.replays.labels(outcome.job_type, outcome.mode).inc()
    return RetryPublic.model_validate(outcome, from_attributes=True)


def _entry_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, entry_id = decode_cursor(cursor)
    try:
        return at, uuid.UUID(entry_id)
    except ValueError:
        raise Problem(
            422,
            "Invalid cursor",
            "cursor: pass next_cursor from the previous page unchanged",
            field="query.cursor",
        ) from None

"""Replay campaigns: a bulk replay run by a `ReplayCampaign` workflow, so it survives restarts of
the API and the worker, can be paused, resumed and cancelled, and can stop itself when its canary
jobs die again.

The API side starts, reads and steers campaigns; the workflow's activities select entries, replay
them (`campaign_steps`: claimed as single replays claim, so a campaign racing another or a single
replay takes every entry once), count what became of the jobs, and delete the runs the resets
replaced. An entry a campaign
replayed is stamped with the campaign and the outcome (`campaign_stamp`), which is how a step
retried after its worker died knows what it already did, and how progress is counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from redrive.contracts import (
    REPLAY_CAMPAIGN_WORKFLOW,
    CampaignFates,
    CampaignFilter,
    CampaignInput,
    CampaignRef,
    Canary,
    EntryRef,
    SelectEntries,
)
from redrive.operations.errors import Conflict, NotFound, Unanswered
from redrive.operations.retry import campaign_stamp, forget, request_delete, settle_delay
from redrive.operations.services import Actor, Services
from redrive.status import TENANT_ID
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter
from redrive.store.types import utcnow

MODES = ("reset", "resubmitted", "continued")
CONCURRENCY = 32
"""Replays of one step in flight at once: each is a history read and a reset, mostly waiting. A
campaign runs two steps at a time (`STEPS_IN_FLIGHT`), so up to twice this."""
NEVER_PICKED_UP = 2
"""A history this short (started, first task scheduled) has not been run by any worker yet."""
QUERY_TIMEOUT = timedelta(seconds=5)
"""How long a campaign's progress query may wait for a worker (the workflow answers it)."""
Steer = Literal["pause", "resume", "cancel"]


@dataclass(frozen=True)
class CampaignOrder:
    """What to replay (pending entries of the actor's tenant matching `where`), how many, how fast,
    why, and the canary to try first."""

    where: CampaignFilter
    max: int = 100
    rate: float | None = None
    """Replays per second; the `replay_rate` setting when None."""
    reason: str | None = None
    force: bool = False
    canary: Canary | None = None


@dataclass(frozen=True)
class CampaignReport:
    """A campaign as the API shows it: its order, its progress (from the workflow's query) and the
    fates of the jobs it replayed (from the database, at the time of asking)."""

    request: CampaignInput
    status: str
    """Temporal's: RUNNING, COMPLETED, FAILED, TERMINATED, …"""
    fates: CampaignFates
    picked_up: bool = True
    """A worker has run it (else its progress is the order's, and it cannot be steered yet)."""
    task_queue: str | None = None
    """The queue its workflow runs on (None: the operations queue). Campaigns started before they
    had a queue of their own run on the jobs' queue."""


def stamp_modes(campaign_id: str) -> dict[str, str]:
    """Every stamp a campaign puts on the entries it replayed, with the outcome each says."""
    return {campaign_stamp(campaign_id, mode): mode for mode in MODES}


async def start_campaign(services: Services, actor: Actor, order: CampaignOrder) -> CampaignInput:
    """Start a campaign for the actor's tenant; it takes entries that died before now."""
    request = CampaignInput(
        campaign_id=f"replay-{uuid.uuid4().hex}",
        tenant_id=actor.tenant,
        actor=actor.identity,
        filter=order.where,
        max=order.max,
        rate=order.rate or services.settings.replay_rate,
        reason=order.reason,
        force=order.force,
        canary=order.canary,
        cutoff=utcnow(),
    )
    await services.temporal.start_workflow(
        REPLAY_CAMPAIGN_WORKFLOW,
        request,
        id=request.campaign_id,
        task_queue=services.settings.operations_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=TypedSearchAttributes([SearchAttributePair(TENANT_ID, actor.tenant)]),
        static_summary=_summary(request),
    )
    return request


def _summary(request: CampaignInput) -> str:
    narrowed = {key: value for key, value in vars(request.filter).items() if value is not None}
    where = ", ".join(f"{key}={value}" for key, value in narrowed.items()) or "every pending entry"
    canary = " after a canary" if request.canary else ""
    return f"replay up to {request.max} dead letters ({where}) at {request.rate:g}/s{canary}"


async def campaign_report(services: Services, actor: Actor, campaign_id: str) -> CampaignReport:
    """The actor's campaign: `NotFound` if it is unknown or another tenant's; `Unanswered` if no
    worker answers its progress query (a campaign no worker has picked up yet shows its order)."""
    handle = services.temporal.get_workflow_handle(campaign_id)
    description: WorkflowExecutionDescription | None = None
    try:
        description = await handle.describe()
        if (
            description.workflow_type != REPLAY_CAMPAIGN_WORKFLOW
            or description.typed_search_attributes.get(TENANT_ID) != actor.tenant
        ):
            raise _not_found(campaign_id)
        picked_up = (description.history_length or 0) > NEVER_PICKED_UP
        request = await _progress(services, campaign_id) if picked_up else None
        if request is None:  # ended before any worker ran it (terminated), or not run yet
            picked_up, request = False, await _order(services, campaign_id)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise _not_found(campaign_id) from None
        if error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            queue = description.task_queue if description else None
            raise _unanswered(services, campaign_id, queue) from None
        raise
    status = description.status.name if description.status else "UNKNOWN"
    fated = await fates(services, request.campaign_id, actor.tenant)
    return CampaignReport(request, status, fated, picked_up, description.task_queue)


async def _progress(services: Services, campaign_id: str) -> CampaignInput | None:
    """The campaign's answer to its progress query; None if it closed before a worker ran it."""
    handle = services.temporal.get_workflow_handle(campaign_id)
    try:
        answer: CampaignInput = await handle.query(
            "progress", result_type=CampaignInput, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as error:
        if error.status == RPCStatusCode.FAILED_PRECONDITION:
            return None
        raise
    return answer


async def _order(services: Services, campaign_id: str) -> CampaignInput:
    """The campaign's order as it was started (its first history event)."""
    async for event in services.temporal.get_workflow_handle(campaign_id).fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (request,) = await services.temporal.data_converter.decode(payloads, [CampaignInput])
        assert isinstance(request, CampaignInput)
        return request
    raise _not_found(campaign_id)


async def list_campaigns(services: Services, actor: Actor, limit: int) -> list[tuple[str, str, Any]]:
    """The actor's latest campaigns, newest first: (id, Temporal status, start time)."""
    # Campaigns started before they had a task queue of their own ran on the jobs' queue.
    queues = ", ".join(
        f'"{_quoted(queue)}"'
        for queue in (services.settings.operations_task_queue, services.settings.task_queue)
    )
    query = (
        f'WorkflowType="{REPLAY_CAMPAIGN_WORKFLOW}" AND TenantId="{_quoted(actor.tenant)}" '
        f"AND TaskQueue IN ({queues})"
    )
    found: list[tuple[str, str, Any]] = []
    async for execution in services.temporal.list_workflows(query, limit=limit):
        status = execution.status.name if execution.status else "UNKNOWN"
        found.append((execution.id, status, execution.start_time))
    return found


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def steer(services: Services, actor: Actor, campaign_id: str, how: Steer) -> CampaignReport:
    """Pause, resume or cancel the actor's campaign; `Conflict` when it cannot (it has ended, or is
    already in that state), `Unanswered` when no worker takes the order."""
    report = await campaign_report(services, actor, campaign_id)
    if report.status != WorkflowExecutionStatus.RUNNING.name:
        state = report.request.progress.state
        raise Conflict("Campaign ended", f"campaign {campaign_id} has ended ({state})")
    handle = services.temporal.get_workflow_handle(campaign_id)
    if not report.picked_up:  # no worker has run it: nothing was replayed, and nothing takes an update
        if how != "cancel":
            raise Conflict(
                "Campaign not started",
                f"no worker has picked campaign {campaign_id} up yet (are the workers of task queue "
                f"{_queue(services, report.task_queue)} running?); it can only be cancelled until one does",
            )
        await handle.terminate(f"cancelled by {actor.identity} before any worker picked it up")
        progress = replace(
            report.request.progress, state="cancelled", stop_reason=f"cancelled by {actor.identity}"
        )
        return replace(report, request=replace(report.request, progress=progress), status="TERMINATED")
    try:
        request: CampaignInput = await handle.execute_update(
            how, actor.identity, result_type=CampaignInput, rpc_timeout=QUERY_TIMEOUT
        )
    except WorkflowUpdateFailedError as error:
        detail = str(error.cause) if error.cause else str(error)
        raise Conflict(f"Cannot {how}", f"campaign {campaign_id}: {detail}") from None
    except RPCError as error:
        if error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            raise _unanswered(services, campaign_id, report.task_queue) from None
        if error.status == RPCStatusCode.NOT_FOUND:  # it ended between the report and the order
            detail = f"campaign {campaign_id} ended before the {how} reached it"
            raise Conflict("Campaign ended", detail) from None
        raise
    return replace(report, request=request)  # its fates were read a moment ago, with the report


def _unanswered(services: Services, campaign_id: str, queue: str | None = None) -> Unanswered:
    return Unanswered(
        "No worker answered",
        f"campaign {campaign_id} exists, but no worker answered for it within "
        f"{QUERY_TIMEOUT.total_seconds():g} s: are the workers of task queue "
        f"{_queue(services, queue)} running?",
    )


def _queue(services: Services, queue: str | None) -> str:
    """The campaign's queue as known, else the operations queue (where campaigns start)."""
    return queue or services.settings.operations_task_queue


@dataclass(frozen=True)
class Replayed:
    """An entry a campaign replayed: how, and the run its job is in now."""

    entry: DeadLetter
    mode: str
    run_id: str | None


async def campaign_outcome(
    services: Services, request: CampaignInput
) -> tuple[CampaignInput, list[Replayed]]:
    """Wait for the campaign to end; what it did, with every entry it replayed. `Unanswered` (and
    the campaign ended, nothing replayed) when no worker picks it up within `QUERY_TIMEOUT`."""
    handle = services.temporal.get_workflow_handle(request.campaign_id, result_type=CampaignInput)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUERY_TIMEOUT.total_seconds()
    while ((await handle.describe()).history_length or 0) <= NEVER_PICKED_UP:
        if loop.time() > deadline:
            await handle.terminate("no worker picked the campaign up")  # its first task replays nothing
            raise _unanswered(services, request.campaign_id)
        await asyncio.sleep(0.1)
    done = await handle.result()
    modes = stamp_modes(request.campaign_id)
    async with services.sessions() as session:
        entries = await DeadLetterRepository(session).replayed_with(request.tenant_id, list(modes))
        runs = await JobRepository(session).snapshots([entry.original_job_id for entry in entries])
    return done, [
        Replayed(
            entry, modes[entry.request_id or ""], getattr(runs.get(entry.original_job_id), "run_id", None)
        )
        for entry in entries
    ]


def _not_found(campaign_id: str) -> NotFound:
    return NotFound("Campaign not found", f"no replay campaign {campaign_id} for this API key")


# The campaign's own steps (run as its activities).


def pending_filter(tenant: str, where: CampaignFilter, cutoff: datetime | None = None) -> DeadLetterFilter:
    """The tenant's pending entries `where` matches, that died before `cutoff` if given."""
    before = where.dlq_before
    if cutoff is not None and (before is None or cutoff < before):
        before = cutoff
    return DeadLetterFilter(
        tenant,
        type=where.type,
        reason=where.reason,
        pending=True,
        stage=where.stage,
        fingerprint=where.fingerprint,
        dlq_before=before,
        dlq_after=where.dlq_after,
    )


async def count_entries(services: Services, request: SelectEntries) -> int:
    """How many pending entries the campaign's filter matches."""
    async with services.sessions() as session:
        return await DeadLetterRepository(session).count(
            pending_filter(request.tenant_id, request.filter, request.cutoff)
        )


async def select_entries(services: Services, request: SelectEntries) -> list[EntryRef]:
    """The next page of matching pending entries, newest first, after `request.after`."""
    after = (request.after.dlq_at, uuid.UUID(request.after.id)) if request.after else None
    async with services.sessions() as session:
        positions = await DeadLetterRepository(session).search_positions(
            pending_filter(request.tenant_id, request.filter, request.cutoff), request.limit, after
        )
    return [EntryRef(id=str(entry), job_id=job_id, dlq_at=dlq_at) for entry, job_id, dlq_at in positions]


async def fates(services: Services, campaign_id: str, tenant: str) -> CampaignFates:
    """What became of the jobs the campaign replayed, read now."""
    async with services.sessions() as session:
        replayed, completed, died = await DeadLetterRepository(session).fates(
            tenant, list(stamp_modes(campaign_id))
        )
    return CampaignFates(replayed=replayed, completed=completed, died_again=died)


async def forget_replaced_runs(
    services: Services, campaign: CampaignRef, beat: Callable[[], None] = lambda: None
) -> int:
    """Delete the dead runs the campaign's resets replaced, so the Temporal UI lists only jobs that
    are dead; a run the server does not let go of at once is handed to a `SupersededRunWorkflow`."""
    async with services.sessions() as session:
        entries = await DeadLetterRepository(session).replayed_with(
            campaign.tenant_id, [campaign_stamp(campaign.campaign_id, "reset")]
        )
    client = services.temporal
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(entry: DeadLetter) -> None:
        handle = client.get_workflow_handle(entry.original_job_id, run_id=entry.run_id)
        async with gate:
            try:
                closed_at = (await handle.describe()).close_time
                if settle_delay(closed_at, utcnow()):  # died moments ago: delete it later
                    await forget(services, entry.original_job_id, entry.run_id, closed_at=closed_at)
                    return
                await request_delete(client, entry.original_job_id, entry.run_id)
                await handle.describe()
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
            else:  # the server deletes it in the background: the workflow checks until it goes
                await forget(
                    services, entry.original_job_id, entry.run_id, closed_at=closed_at, delete_sent=True
                )
            finally:
                beat()

    await asyncio.gather(*(one(entry) for entry in entries))
    return len(entries)

"""Retrying a dead job: a Temporal reset to the workflow task that scheduled the failed stage (or an
earlier one the caller names), so completed stages keep their results and the stage starts with a
fresh retry budget. Where the history is gone, a new run starts from the stored payload.

A reset leaves the dead run behind, still carrying `JobStatus="dead_letter"`; a
`SupersededRunWorkflow` deletes it durably, so the Temporal UI lists only jobs that are dead.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest, ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from redrive.contracts import SUPERSEDED_RUN_WORKFLOW, SupersededRun
from redrive.jobtypes import UnknownJobType
from redrive.operations.errors import Busy, Conflict, Invalid, NotFound
from redrive.operations.patch import dead_run, merge_patch, patched_fields
from redrive.operations.services import Actor, Services
from redrive.operations.submit import check_payload, start_job
from redrive.status import JobStatus
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter, Job, JobAction
from redrive.store.projection import RETRYABLE, ProjectionWrites
from redrive.store.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryOrder:
    """What the caller asked for: where to restart, why, and whether to pass the replay limit."""

    from_stage: str | None = None
    reason: str | None = None
    force: bool = False
    action: str = "retry"
    """How the job's action log names it: `retry`, or `replay` when it came through the DLQ."""
    payload_patch: dict[str, Any] | None = None
    """A JSON Merge Patch of the payload: the job continues from the stage in a new run."""
    campaign: str | None = None
    """The replay campaign doing it: stamps the entry with the campaign, which deletes the runs
    its resets replaced itself, in one pass at its end."""

    def stamp(self, how: Restart) -> str:
        """What the dead letter is stamped with: the campaign and the outcome, or the request id."""
        return campaign_stamp(self.campaign, how.mode) if self.campaign else how.request_id


CLAIM_LEASE = timedelta(seconds=15)
"""A retry that claimed a dead run and recorded nothing within this long died on the way (a
worker killed mid-campaign, an API restarted mid-request): another may take the claim over."""


def campaign_stamp(campaign_id: str, mode: str) -> str:
    """How a campaign stamps the entries it replayed: by campaign and outcome (an indexed column)."""
    return f"campaign:{campaign_id}:{mode}"


@dataclass(frozen=True)
class RetryOutcome:
    """What a retry did: `reset` reused the history; `resubmitted` started anew from the payload."""

    job_id: str
    run_id: str
    from_stage: str
    mode: Literal["reset", "resubmitted", "continued"]
    dead_letter_id: uuid.UUID | None
    reason: str | None
    retried_by: str
    job_type: str = ""


async def reset_point(client: Client, job_id: str, run_id: str, stage: str) -> int | None:
    """The WorkflowTaskCompleted event that scheduled `stage` last, or None if the history is gone."""
    point = None
    try:
        handle = client.get_workflow_handle(job_id, run_id=run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                if attributes.activity_id == stage:
                    point = attributes.workflow_task_completed_event_id
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return point


async def retry(services: Services, actor: Actor, job_id: str, order: RetryOrder) -> RetryOutcome:
    """Retry the actor's dead job: `NotFound` if unknown, `Conflict` if not dead or past the limit."""
    async with services.sessions() as session:
        job = await JobRepository(session).get(actor.tenant, job_id)
        if job is None:
            raise NotFound("Job not found", f"no job {job_id} for this API key")
        entry = None
        if job.run_id is not None:
            entry = await DeadLetterRepository(session).pending_for_job(actor.tenant, job_id, job.run_id)
    return await retry_job(services, actor, job, entry, order)


async def retry_job(
    services: Services, actor: Actor, job: Job, entry: DeadLetter | None, order: RetryOrder
) -> RetryOutcome:
    """Restart `job` (dead, with its pending dead letter `entry` if any) as `order` says."""
    taken = check_retry(services, job, entry, order)
    if taken.continues:
        return await _continue_patched(services, actor, job, entry, order, taken.from_stage)
    restart = await _restarter(services, actor, taken, order)
    outcome = await _claimed(services, actor, job, entry, order, restart)
    if outcome.mode == "reset" and order.campaign is None:
        await forget(services, job.id, taken.dead_run)
    return outcome


@dataclass(frozen=True)
class Taken:
    """A dead job a retry may restart: checked, with the stage it restarts from."""

    job: Job
    entry: DeadLetter | None
    dead_run: str
    from_stage: str
    first_stage: str
    continues: bool
    """It continues in a new run (a payload patch, or a local stage) rather than by a reset."""


def check_retry(services: Services, job: Job, entry: DeadLetter | None, order: RetryOrder) -> Taken:
    """What `order` would restart of `job`: `Busy` while another retry holds it, `Conflict` if it is
    not dead or past the replay limit, `Invalid` for a `from_stage` it cannot restart from."""
    dead_run, failed_stage = job.run_id, job.stage
    if _held(job, entry) and not _abandoned(job, entry):
        raise Busy("Retry in progress", f"job {job.id} is already being retried by another request")
    if not (job.status in RETRYABLE or _abandoned(job, entry)) or dead_run is None or failed_stage is None:
        raise Conflict(
            "Job is not dead", f"job {job.id} is {job.status}; only a dead-lettered job can be retried"
        )
    _check_replay_limit(services, entry, order)
    stages = _stage_names(services, job)
    from_stage = _from_stage(stages, failed_stage, order)
    # A local stage runs in the same workflow task as the stages around it, so no reset point lies
    # between them: it continues in a new run, the stages before it carried over.
    continues = order.payload_patch is not None or _local(services, job, from_stage)
    return Taken(job, entry, dead_run, from_stage, stages[0], continues)


Restarter = Callable[[], Awaitable[tuple[str, "Restart"]]]
"""Restarts a claimed dead run: its new run, and how it was restarted."""


async def _restarter(services: Services, actor: Actor, taken: Taken, order: RetryOrder) -> Restarter:
    """How to restart `taken`: by a reset to the workflow task that scheduled its stage (as the dead
    run recorded it, or else read from the run's history), or anew from its payload when the
    history is gone."""
    job = taken.job
    entry = taken.entry
    request_id = f"retry-{entry.id if entry else taken.dead_run}"  # Temporal de-dupes a resent reset
    known = _recorded_point(taken)
    point = known or await reset_point(services.temporal, job.id, taken.dead_run, taken.from_stage)

    async def restart() -> tuple[str, Restart]:
        if point is not None:
            reason = _reason(actor, taken.from_stage, order)
            try:
                run_id = await _reset(services, job, taken.dead_run, point, reason, request_id, actor)
                return run_id, Restart("reset", taken.from_stage, request_id)
            except RPCError as error:  # a recorded point is used without looking: the run may be gone
                if known is None or error.status != RPCStatusCode.NOT_FOUND:
                    raise
        return await _resubmit(services, job), Restart("resubmitted", taken.first_stage, request_id)

    return restart


def _recorded_point(taken: Taken) -> int | None:
    """The reset point the dead run recorded with its entry, if the retry starts from that stage."""
    entry = taken.entry
    if entry is None or entry.run_id != taken.dead_run or entry.stage != taken.from_stage:
        return None
    return entry.reset_point


async def claim_many(services: Services, takes: Sequence[Taken]) -> list[Taken]:
    """Claim the dead runs of `takes` at once (as `_claimed` claims each); those won."""
    async with services.sessions() as session, session.begin():
        now = utcnow()
        runs = [(taken.job.id, taken.dead_run) for taken in takes]
        won = await ProjectionWrites(session).claim_many_retries(runs, now, now - CLAIM_LEASE)
    return [taken for taken in takes if taken.job.id in won]


async def restart_claimed(services: Services, actor: Actor, taken: Taken, order: RetryOrder) -> Restarted:
    """Restart `taken`, whose dead run the caller claimed (see `claim_many`); the claim is given
    back if the restart fails."""
    try:
        run_id, how = await (await _restarter(services, actor, taken, order))()
        return Restarted(taken.job, taken.entry, taken.dead_run, how, run_id)
    except BaseException:
        await _release(services, taken.job)
        raise


@dataclass(frozen=True)
class Restarted:
    """A claimed job (with its pending dead letter, if any) restarted: how, and its new run."""

    job: Job
    entry: DeadLetter | None
    dead_run: str
    how: Restart
    run_id: str


async def record_many(services: Services, actor: Actor, order: RetryOrder, done: Sequence[Restarted]) -> None:
    """Stamp each dead letter replayed, requeue each job in its new run (with its new payload, if
    patched), and log who did it: in one transaction of a few statements. A failure is logged, not
    raised: the jobs run again, and a 5xx would say nothing changed; their rows follow the new runs'
    own writes and the maintenance repair, the replay stamps and the actions are lost."""
    now = utcnow()
    stamped: dict[str, list[uuid.UUID]] = {}
    for restarted in done:
        if restarted.entry is not None:
            stamped.setdefault(order.stamp(restarted.how), []).append(restarted.entry.id)
    try:
        async with services.sessions() as session, session.begin():
            entries = DeadLetterRepository(session)
            for stamp, entry_ids in stamped.items():
                await entries.mark_many_replayed(actor.tenant, entry_ids, now, stamp, actor.identity)
            writes = ProjectionWrites(session)
            await writes.requeue_many([(r.job.id, r.dead_run, r.run_id) for r in done], now)
            for restarted in done:
                if restarted.how.payload is not None:
                    await writes.replace_payload(
                        restarted.job.id, restarted.dead_run, restarted.run_id, restarted.how.payload
                    )
                await writes.record_action(_action(actor, restarted.job.id, order, restarted.how, now))
    except Exception:
        runs = ", ".join(f"{r.job.id} (run {r.run_id})" for r in done)
        log.error("restarted, but not recorded: %s", runs, exc_info=True)


def _held(job: Job, entry: DeadLetter | None) -> bool:
    """The job's dead run is claimed by a retry that has not recorded a new run (yet)."""
    return (
        entry is not None
        and entry.replayed_at is None
        and job.run_id == entry.run_id
        and job.status == JobStatus.QUEUED.value
    )


def _abandoned(job: Job, entry: DeadLetter | None) -> bool:
    """The job's dead run was claimed by a retry that never recorded a new run (see `CLAIM_LEASE`)."""
    return _held(job, entry) and job.updated_at < utcnow() - CLAIM_LEASE


@dataclass(frozen=True)
class Restart:
    """How a retry restarts the job: its mode, the stage the new run begins with, the request id its
    dead letter is stamped with, and the payload when the retry changed it."""

    mode: Literal["reset", "resubmitted", "continued"]
    begins: str
    request_id: str
    payload: dict[str, Any] | None = None
    note: str | None = None
    """What the action log says beyond the stage (default: the order's reason)."""


async def _claimed(
    services: Services,
    actor: Actor,
    job: Job,
    entry: DeadLetter | None,
    order: RetryOrder,
    restart: Restarter,
) -> RetryOutcome:
    """What every retry does around its `restart`: claim the dead run (one winner among racing
    calls), give it back if the restart fails, record the new run, and say what was done."""
    assert job.run_id is not None  # checked by check_retry
    async with services.sessions() as session, session.begin():
        now = utcnow()
        taken = ProjectionWrites(session).claim_retry(job.id, job.run_id, now, now - CLAIM_LEASE)
        if not await taken:
            raise Busy("Retry in progress", f"job {job.id} is already being retried by another request")
    try:
        new_run_id, how = await restart()
    except BaseException:
        await _release(services, job)
        raise
    await record_many(services, actor, order, [Restarted(job, entry, job.run_id, how, new_run_id)])
    return RetryOutcome(
        job_id=job.id,
        run_id=new_run_id,
        from_stage=how.begins,
        mode=how.mode,
        dead_letter_id=entry.id if entry else None,
        reason=order.reason,
        retried_by=actor.identity,
        job_type=job.type,
    )


async def _continue_patched(
    services: Services, actor: Actor, job: Job, entry: DeadLetter | None, order: RetryOrder, from_stage: str
) -> RetryOutcome:
    """Continue `job` from `from_stage` in a new run whose payload is the dead one's patched: checked
    before anything changes (422 naming `payload_patch.<field>`), the stages before it carried over
    from the dead run; from the first stage when the dead run's history is gone."""
    assert job.run_id is not None  # checked by check_retry
    patch = order.payload_patch or {}
    job_type = services.registry.get(job.type)
    payload = merge_patch(job.payload, patch)
    if not isinstance(payload, dict):
        raise Invalid("Invalid payload_patch", "payload_patch must be a JSON object", field="payload_patch")
    try:
        check_payload(job_type.payload_model, payload)
    except Invalid as error:
        field = (error.field or "payload").replace("payload", "payload_patch", 1)
        detail = error.detail.replace("payload", "payload_patch", 1)
        raise Invalid("Invalid payload_patch", detail, field=field) from None
    found = await dead_run(services.temporal, job.id, job.run_id)
    outputs: dict[str, Any] = {}
    if found is None:
        plan, position = job_type.plan(), 0
    else:
        dead_input, outputs = found
        plan = dead_input.stages
        names = [stage.name for stage in plan]
        position = names.index(from_stage) if from_stage in names else 0
        outputs = {name: outputs[name] for name in names[:position] if name in outputs}

    changed = ", ".join(patched_fields(patch))
    note = f"payload patched ({changed})" if patch else "continued in a new run (local stage)"
    note += f"; {order.reason}" if order.reason else ""
    request_id = f"patch-{entry.id if entry else job.run_id}"
    how = Restart("continued", plan[position].name, request_id, payload, note)

    async def restart() -> tuple[str, Restart]:
        run_id = await start_job(
            services,
            job_type,
            job.id,
            job.tenant_id,
            payload,
            WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            plan=plan,
            start_at=position,
            outputs=outputs,
            # The dead run may still be sending its alert (its job reads dead_letter already): the
            # new run replaces it.
            conflict=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        )
        return run_id, how

    # The dead run stays (unlike after a reset): it is the record of the payload that failed. Deleting
    # it here was seen to stall the dev server's later deletions of reset runs for minutes.
    return await _claimed(services, actor, job, entry, order, restart)


async def _release(services: Services, job: Job) -> None:
    """Give the claimed dead run of `job` back: its restart failed."""
    assert job.run_id is not None  # checked by check_retry
    async with services.sessions() as session, session.begin():
        status = job.status if job.status in RETRYABLE else JobStatus.DEAD_LETTER.value
        await ProjectionWrites(session).release_retry(job.id, job.run_id, status, utcnow())


def _action(actor: Actor, job_id: str, order: RetryOrder, how: Restart, at: datetime) -> JobAction:
    """The job's action log entry for a retry."""
    said = how.note or order.reason
    note = f"from stage {how.begins}: {said}" if said else f"from stage {how.begins}"
    return JobAction(job_id=job_id, action=order.action, actor=actor.identity, note=note, at=at)


def _local(services: Services, job: Job, stage: str) -> bool:
    """`stage` of the job's type is declared local (see `Stage.local`)."""
    return any(
        declared.name == stage and declared.local for declared in services.registry.get(job.type).stages
    )


def _stage_names(services: Services, job: Job) -> list[str]:
    try:
        return [stage.name for stage in services.registry.get(job.type).stages]
    except UnknownJobType:
        raise Conflict(
            "Job type gone", f"job type {job.type!r} is no longer declared; it cannot be retried"
        ) from None


def _from_stage(stages: list[str], failed_stage: str, order: RetryOrder) -> str:
    if order.from_stage is None:
        return failed_stage
    allowed = stages[: stages.index(failed_stage) + 1] if failed_stage in stages else [failed_stage]
    if order.from_stage not in allowed:
        raise Invalid(
            "Invalid from_stage",
            f"from_stage must be one of {', '.join(allowed)} (the failed stage or one before it)",
            field="from_stage",
        )
    return order.from_stage


def _check_replay_limit(services: Services, entry: DeadLetter | None, order: RetryOrder) -> None:
    limit = services.settings.max_replays
    if entry is not None and entry.replay_count >= limit and not order.force:
        raise Conflict(
            "Replay limit reached",
            f"this job came back to the dead-letter queue after {entry.replay_count} replays (limit "
            f"{limit}); find the cause, then send force=true to replay it anyway",
            field="force",
        )


def _reason(actor: Actor, from_stage: str, order: RetryOrder) -> str:
    reason = f"redrive retry from stage {from_stage} by {actor.identity}"
    return f"{reason}: {order.reason}" if order.reason else reason


RESET_PAUSES = (0.2, 1.0)
"""Pauses before a reset is sent again after a transient refusal (`TRANSIENT`): the server has been
seen to cancel a reset of a run that was still closing. The request id is the same, so Temporal
does not reset twice if the refused call did go through."""
TRANSIENT = (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


async def _reset(
    services: Services, job: Job, run_id: str, point: int, reason: str, request_id: str, actor: Actor
) -> str:
    request = ResetWorkflowExecutionRequest(
        namespace=services.settings.temporal_namespace,
        workflow_execution=WorkflowExecution(workflow_id=job.id, run_id=run_id),
        reason=reason,
        workflow_task_finish_event_id=point,
        request_id=request_id,
        identity=f"redrive-api:{actor.identity}",
    )
    service = services.temporal.workflow_service
    for pause in RESET_PAUSES:
        try:
            return (await service.reset_workflow_execution(request)).run_id
        except RPCError as error:
            if error.status not in TRANSIENT:
                raise
            log.warning("reset of job %s refused (%s); sending it again", job.id, error.message)
            await asyncio.sleep(pause)
    return (await service.reset_workflow_execution(request)).run_id


async def _resubmit(services: Services, job: Job) -> str:
    # The history is gone (past retention): start the job again from its stored payload.
    job_type = services.registry.get(job.type)
    reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    return await start_job(services, job_type, job.id, job.tenant_id, job.payload, reuse)


SETTLE = timedelta(seconds=40)
"""How long after a run closed the server surely lets it be deleted. It deletes a run only once the
run's close is acknowledged in its transfer queue, whose progress it records every 30 s (±15 %). A
delete sent sooner waits in that queue, retrying with a growing backoff, and while it waits it holds
back the acknowledgement of every later close: deletes sent early pile up behind each other."""


def settle_delay(closed_at: datetime | None, now: datetime) -> timedelta:
    """How long to wait before asking to delete a run that closed at `closed_at`."""
    if closed_at is None:
        return timedelta(0)
    return max(timedelta(0), closed_at + SETTLE - now)


async def request_delete(client: Client, job_id: str, run_id: str) -> None:
    """Ask Temporal to delete run `run_id` of `job_id`; it does so in the background (see `SETTLE`)."""
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=job_id, run_id=run_id),
        )
    )


async def forget(
    services: Services,
    job_id: str,
    run_id: str,
    *,
    closed_at: datetime | None = None,
    delete_sent: bool = False,
) -> None:
    """Have the superseded dead run `run_id` deleted, once `SETTLE` has passed since it closed.

    Durable: once started, the deletion is checked by Temporal until the run is gone, whatever
    happens to this process. One workflow per superseded run, so a repeat joins it. `closed_at`: when
    the run closed, if the caller knows (else it is described); `delete_sent`: the caller has asked
    for the delete already (a second request would only add to the server's queue)."""
    try:
        if closed_at is None:
            closed_at = (
                await services.temporal.get_workflow_handle(job_id, run_id=run_id).describe()
            ).close_time
        await services.temporal.start_workflow(
            SUPERSEDED_RUN_WORKFLOW,
            SupersededRun(job_id=job_id, run_id=run_id, delete_sent=delete_sent),
            id=f"forget-{job_id}-{run_id}",
            task_queue=services.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_delay=settle_delay(closed_at, utcnow()) or None,
            static_summary=f"delete run {run_id} of {job_id}, superseded by a retry",
        )
    except RPCError as error:  # the retry itself happened: report that, not this
        if error.status == RPCStatusCode.NOT_FOUND:
            return  # gone already
        log.warning("could not start the deletion of superseded run %s of %s: %s", run_id, job_id, error)

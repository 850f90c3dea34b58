"""Retrying a dead job: a Temporal reset to the workflow task that scheduled the failed stage (or an
earlier one the caller names), so completed stages keep their results and the stage starts with a
fresh retry budget. Where the history is gone, a new run starts from the stored payload."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Caller
from api.problems import Problem
from api.schemas import RetryPublic
from api.state import AppState
from api.submission import start_job
from redrive.jobtypes import UnknownJobType
from redrive.status import JobStatus
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter, Job, JobAction
from redrive.store.types import utcnow

RETRYABLE = (JobStatus.DEAD_LETTER.value, JobStatus.ARCHIVED.value)


@dataclass(frozen=True)
class RetryOrder:
    """What the caller asked for: where to restart, why, and whether to pass the replay limit."""

    from_stage: str | None = None
    reason: str | None = None
    force: bool = False
    field_prefix: str = "body"
    action: str = "retry"
    """How the job's action log names it: `retry`, or `replay` when it came through the DLQ."""


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


async def retry(state: AppState, caller: Caller, job_id: str, order: RetryOrder) -> RetryPublic:
    """Retry the caller's dead job; 404 if unknown, 409 if it is not dead or hit the replay limit."""
    async with state.sessions() as session:
        job = await JobRepository(session).get(caller.tenant, job_id)
        if job is None:
            raise Problem(404, "Job not found", f"no job {job_id} for this API key")
        entry = None
        if job.run_id is not None:
            entry = await DeadLetterRepository(session).pending_for_job(caller.tenant, job_id, job.run_id)
    return await retry_job(state, caller, job, entry, order)


async def retry_job(
    state: AppState, caller: Caller, job: Job, entry: DeadLetter | None, order: RetryOrder
) -> RetryPublic:
    """Restart `job` (dead, with its pending dead letter `entry` if any) as `order` says."""
    dead_run, failed_stage = job.run_id, job.stage  # an archived job is dead too: RETRYABLE has both
    if job.status not in RETRYABLE or dead_run is None or failed_stage is None:
        raise Problem(
            409, "Job is not dead", f"job {job.id} is {job.status}; only a dead-lettered job can be retried"
        )
    _check_replay_limit(state, entry, order)
    stages = _stage_names(state, job)
    from_stage = _from_stage(stages, failed_stage, order)
    point = await reset_point(state.temporal, job.id, dead_run, from_stage)
    reason = _reason(caller, from_stage, order)
    request_id = f"retry-{entry.id if entry else dead_run}"  # Temporal de-dupes a resent reset by it
    async with state.sessions() as session, session.begin():
        if not await JobRepository(session).claim_retry(job.id, dead_run, utcnow()):
            raise Problem(
                409, "Retry in progress", f"job {job.id} is already being retried by another request"
            )
    try:
        if point is None:
            new_run_id, mode = await _resubmit(state, job), "resubmitted"
        else:
            new_run_id, mode = await _reset(state, job, dead_run, point, reason, request_id, caller), "reset"
    except BaseException:
        async with state.sessions() as session, session.begin():
            await JobRepository(session).release_retry(job.id, dead_run, job.status, utcnow())
        raise
    now = utcnow()
    async with state.sessions() as session, session.begin():
        if entry is not None:
            await DeadLetterRepository(session).mark_replayed(
                caller.tenant, entry.id, now, request_id, caller.identity
            )
        jobs = JobRepository(session)
        await jobs.requeue(job.id, dead_run, new_run_id, now)
        note = f"from stage {from_stage}: {order.reason}" if order.reason else f"from stage {from_stage}"
        action = JobAction(job_id=job.id, action=order.action, actor=caller.identity, note=note, at=now)
        await jobs.record_action(action)
    if mode == "reset":
        state.janitor.forget(job.id, dead_run)
    return RetryPublic(
        job_id=job.id,
        run_id=new_run_id,
        from_stage=from_stage if mode == "reset" else stages[0],
        mode=mode,
        dead_letter_id=entry.id if entry else None,
        reason=order.reason,
        retried_by=caller.identity,
    )


def _stage_names(state: AppState, job: Job) -> list[str]:
    try:
        return [stage.name for stage in state.registry.get(job.type).stages]
    except UnknownJobType:
        raise Problem(
            409, "Job type gone", f"job type {job.type!r} is no longer declared; it cannot be retried"
        ) from None


def _from_stage(stages: list[str], failed_stage: str, order: RetryOrder) -> str:
    if order.from_stage is None:
        return failed_stage
    allowed = stages[: stages.index(failed_stage) + 1] if failed_stage in stages else [failed_stage]
    if order.from_stage not in allowed:
        raise Problem(
            422,
            "Invalid from_stage",
            f"from_stage must be one of {', '.join(allowed)} (the failed stage or one before it)",
            field=f"{order.field_prefix}.from_stage",
        )
    return order.from_stage


def _check_replay_limit(state: AppState, entry: DeadLetter | None, order: RetryOrder) -> None:
    limit = state.settings.max_replays
    if entry is not None and entry.replay_count >= limit and not order.force:
        raise Problem(
            409,
            "Replay limit reached",
            f"this job came back to the dead-letter queue after {entry.replay_count} replays (limit "
            f"{limit}); find the cause, then send force=true to replay it anyway",
            field=f"{order.field_prefix}.force",
        )


def _reason(caller: Caller, from_stage: str, order: RetryOrder) -> str:
    reason = f"redrive retry from stage {from_stage} by {caller.identity}"
    return f"{reason}: {order.reason}" if order.reason else reason


async def _reset(
    state: AppState, job: Job, run_id: str, point: int, reason: str, request_id: str, caller: Caller
) -> str:
    response = await state.temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=state.settings.temporal_namespace,
            workflow_execution=WorkflowExecution(workflow_id=job.id, run_id=run_id),
            reason=reason,
            workflow_task_finish_event_id=point,
            request_id=request_id,
            identity=f"redrive-api:{caller.identity}",
        )
    )
    return response.run_id


async def _resubmit(state: AppState, job: Job) -> str:
    # The history is gone (past retention): start the job again from its stored payload.
    job_type = state.registry.get(job.type)
    reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    return await start_job(state, job_type, job.id, job.tenant_id, job.payload, reuse)

"""Retrying a dead job: a Temporal reset to the workflow task that scheduled the failed stage, so
completed stages keep their results and the failed stage starts with a fresh retry budget."""

from __future__ import annotations

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from api.problems import Problem
from api.schemas import RetryPublic, RetryRequest
from api.state import AppState
from api.submission import start_job
from redrive.messages import JobInput
from redrive.status import JobStatus
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.models import DeadLetter, Job
from redrive.store.types import utcnow


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


async def retry(state: AppState, tenant_id: str, job_id: str, request: RetryRequest) -> RetryPublic:
    """Retry the tenant's dead job from its failed stage; 404 if unknown, 409 if it is not dead."""
    async with state.sessions() as session:
        job = await JobRepository(session).get(tenant_id, job_id)
        if job is None:
            raise Problem(404, "Job not found", f"no job {job_id} for this API key")
        if job.status != JobStatus.DEAD_LETTER.value or job.run_id is None or job.stage is None:
            raise Problem(
                409,
                "Job is not dead",
                f"job {job_id} is {job.status}; only a job in dead_letter can be retried",
            )
        entry = await DeadLetterRepository(session).pending_for_job(tenant_id, job_id, job.run_id)
    point = await reset_point(state.temporal, job_id, job.run_id, job.stage)
    if point is None:
        new_run_id = await _resubmit(state, job)
        mode = "resubmitted"
    else:
        new_run_id = await _reset(state, job, point, request, entry)
        mode = "reset"
    async with state.sessions() as session, session.begin():
        now = utcnow()
        if entry is not None:
            await DeadLetterRepository(session).mark_replayed(
                entry.id, now, _request_id(job, entry), tenant_id
            )
        await JobRepository(session).requeue(job_id, job.run_id, new_run_id, now)
    if mode == "reset":
        state.janitor.forget(job_id, job.run_id)
    return RetryPublic(
        job_id=job_id,
        run_id=new_run_id,
        from_stage=job.stage,
        mode=mode,
        dead_letter_id=entry.id if entry else None,
    )


def _request_id(job: Job, entry: DeadLetter | None) -> str:
    # One id per dead run: two racing retries of the same dead letter make one reset, not two.
    return f"retry-{entry.id if entry else job.run_id}"


async def _reset(
    state: AppState, job: Job, point: int, request: RetryRequest, entry: DeadLetter | None
) -> str:
    reason = f"redrive retry from stage {job.stage}"
    if request.reason:
        reason += f": {request.reason}"
    response = await state.temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=state.settings.temporal_namespace,
            workflow_execution=WorkflowExecution(workflow_id=job.id, run_id=job.run_id or ""),
            reason=reason,
            workflow_task_finish_event_id=point,
            request_id=_request_id(job, entry),
            identity=f"redrive-api:{job.tenant_id}",
        )
    )
    return response.run_id


async def _resubmit(state: AppState, job: Job) -> str:
    # The history is gone (past retention): start the job again from its stored payload.
    job_type = state.registry.get(job.type)
    stages = job_type.stages
    restart = JobInput(
        job_id=job.id, tenant_id=job.tenant_id, job_type=job.type, payload=job.payload, stages=stages
    )
    return await start_job(state, restart, WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)

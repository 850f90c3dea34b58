"""A person steps into a running job: cancel it, or decide the review stage it is waiting in. Both
go to the job's current run in Temporal; the workflow projects the outcome, and the API keeps who
did it and why in the job's action log."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Caller
from api.problems import Problem
from api.schemas import CancelPublic, CancelRequest, ReviewPublic, ReviewRequest
from api.state import AppState
from redrive.messages import ReviewInput, ReviewResult
from redrive.status import JobStatus
from redrive.store.jobs import JobRepository
from redrive.store.models import Job, JobAction
from redrive.store.types import utcnow

CANCELLABLE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.PENDING_REVIEW)
UPDATE_TIMEOUT = timedelta(seconds=10)
GONE = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
"""What Temporal answers for a run that has closed meanwhile."""


async def cancel(state: AppState, caller: Caller, job_id: str, request: CancelRequest) -> CancelPublic:
    """Ask the job's run to stop; 409 when it has finished already."""
    job = await _job(state, caller, job_id)
    if job.status not in CANCELLABLE or job.run_id is None:
        allowed = ", ".join(CANCELLABLE)
        raise Problem(
            409, "Job cannot be cancelled", f"job {job_id} is {job.status}; only {allowed} jobs can"
        )
    try:
        await _handle(state, job).cancel()
    except RPCError as error:
        if error.status not in GONE:
            raise
        raise Problem(409, "Job cannot be cancelled", f"job {job_id} has just finished") from None
    await _record(state, job, "cancel", caller, request.reason)
    return CancelPublic(job_id=job_id, run_id=job.run_id, status="cancelling")


async def review(state: AppState, caller: Caller, job_id: str, request: ReviewRequest) -> ReviewPublic:
    """Approve or reject the review stage the job waits in; 409 with the reason when it is not."""
    job = await _job(state, caller, job_id)
    decision = ReviewInput(decision=request.decision, reviewer=caller.identity, comment=request.comment)
    not_waiting = f"job {job_id} is {job.status}, not waiting for a review"
    if job.run_id is None or job.status != JobStatus.PENDING_REVIEW:
        # The workflow projects pending_review before it waits, so this spares Temporal (and the
        # caller) an update that would sit unanswered behind a queued or busy run.
        raise Problem(409, "Job is not in review", not_waiting)
    try:
        result = await _handle(state, job).execute_update(
            "review", decision, result_type=ReviewResult, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as error:
        detail = getattr(error.cause, "message", None) or not_waiting
        raise Problem(409, "Job is not in review", f"job {job_id}: {detail}") from None
    except RPCError as error:
        if error.status not in GONE:
            raise
        raise Problem(409, "Job is not in review", not_waiting) from None
    note = f"{result.decision} {result.stage}" + (f": {request.comment}" if request.comment else "")
    await _record(state, job, "review", caller, note)
    return ReviewPublic(job_id=job_id, stage=result.stage, decision=result.decision, reviewer=caller.identity)


async def _job(state: AppState, caller: Caller, job_id: str) -> Job:
    async with state.sessions() as session:
        job = await JobRepository(session).get(caller.tenant, job_id)
    if job is None:
        raise Problem(404, "Job not found", f"no job {job_id} for this API key")
    return job


def _handle(state: AppState, job: Job) -> WorkflowHandle[object, object]:
    return state.temporal.get_workflow_handle(job.id, run_id=job.run_id)


async def _record(state: AppState, job: Job, action: str, caller: Caller, note: str | None) -> None:
    async with state.sessions() as session, session.begin():
        entry = JobAction(job_id=job.id, action=action, actor=caller.identity, note=note, at=utcnow())
        await JobRepository(session).record_action(entry)

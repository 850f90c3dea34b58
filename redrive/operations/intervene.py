"""A person steps into a running job: cancel it, or decide the review stage it is waiting in. Both
go to the job's current run in Temporal; the workflow projects the outcome, and the job's action log
keeps who did it and why."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from redrive.contracts import ReviewInput, ReviewResult
from redrive.operations.errors import Conflict, NotFound
from redrive.operations.services import Actor, Services
from redrive.status import JobStatus
from redrive.store.jobs import JobRepository
from redrive.store.models import Job, JobAction
from redrive.store.projection import ProjectionWrites
from redrive.store.types import utcnow

CANCELLABLE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING, JobStatus.PENDING_REVIEW)
UPDATE_TIMEOUT = timedelta(seconds=10)
GONE = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
"""What Temporal answers for a run that has closed meanwhile."""


async def cancel(services: Services, actor: Actor, job_id: str, reason: str | None) -> str:
    """Ask the job's run to stop; its run id. `Conflict` when it has finished already."""
    job = await _job(services, actor, job_id)
    if job.status not in CANCELLABLE or job.run_id is None:
        allowed = ", ".join(CANCELLABLE)
        raise Conflict("Job cannot be cancelled", f"job {job_id} is {job.status}; only {allowed} jobs can")
    try:
        await _handle(services, job).cancel()
    except RPCError as error:
        if error.status not in GONE:
            raise
        raise Conflict("Job cannot be cancelled", f"job {job_id} has just finished") from None
    await _record(services, job, "cancel", actor, reason)
    return job.run_id


async def review(
    services: Services, actor: Actor, job_id: str, decision: str, comment: str | None
) -> ReviewResult:
    """Approve or reject the review stage the job waits in; `Conflict` with the reason when it is not."""
    job = await _job(services, actor, job_id)
    request = ReviewInput(decision=decision, reviewer=actor.identity, comment=comment)
    not_waiting = f"job {job_id} is {job.status}, not waiting for a review"
    if job.run_id is None or job.status != JobStatus.PENDING_REVIEW:
        # The workflow projects pending_review before it waits, so this spares Temporal (and the
        # caller) an update that would sit unanswered behind a queued or busy run.
        raise Conflict("Job is not in review", not_waiting)
    try:
        result: ReviewResult = await _handle(services, job).execute_update(
            "review", request, result_type=ReviewResult, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as error:
        detail = getattr(error.cause, "message", None) or not_waiting
        raise Conflict("Job is not in review", f"job {job_id}: {detail}") from None
    except RPCError as error:
        if error.status not in GONE:
            raise
        raise Conflict("Job is not in review", not_waiting) from None
    note = f"{result.decision} {result.stage}" + (f": {comment}" if comment else "")
    await _record(services, job, "review", actor, note)
    return result


async def _job(services: Services, actor: Actor, job_id: str) -> Job:
    async with services.sessions() as session:
        job = await JobRepository(session).get(actor.tenant, job_id)
    if job is None:
        raise NotFound("Job not found", f"no job {job_id} for this API key")
    return job


def _handle(services: Services, job: Job) -> WorkflowHandle[object, object]:
    return services.temporal.get_workflow_handle(job.id, run_id=job.run_id)


async def _record(services: Services, job: Job, action: str, actor: Actor, note: str | None) -> None:
    async with services.sessions() as session, session.begin():
        entry = JobAction(job_id=job.id, action=action, actor=actor.identity, note=note, at=utcnow())
        await ProjectionWrites(session).record_action(entry)

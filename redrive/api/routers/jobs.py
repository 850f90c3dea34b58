"""`/v1/jobs`: submit, list, show, retry, cancel and review jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Response

from redrive.api.cursors import decode_cursor, encode_cursor
from redrive.api.deps import OperateDep, ReadDep, SessionDep, StateDep, SubmitDep
from redrive.api.problems import Problem
from redrive.api.views import job_view
from redrive.operations import NewJob, RetryOrder, cancel, retry, review, submit
from redrive.schemas import (
    MAX_PAGE,
    PROBLEMS,
    SUBMIT_EXAMPLES,
    CancelPublic,
    CancelRequest,
    IsoTime,
    JobCreate,
    JobPage,
    JobPublic,
    RetryPublic,
    RetryRequest,
    ReviewPublic,
    ReviewRequest,
)
from redrive.status import ErrorReason, JobStatus
from redrive.store.archival import ArchiveRule
from redrive.store.breakers import BreakerStore
from redrive.store.dead_letters import DeadLetterRepository
from redrive.store.jobs import JobFilter, JobRepository

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEMS)


@router.post(
    "",
    status_code=202,
    summary="Submit a job",
    responses={
        200: {"model": JobPublic, "description": "A repeat with the same idempotency key: the same job."}
    },
)
async def create_job(
    body: Annotated[JobCreate, Body(openapi_examples=SUBMIT_EXAMPLES)],
    state: StateDep,
    caller: SubmitDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> JobPublic:
    """Start a job of a registered type. With an idempotency key (the `Idempotency-Key` header or the
    body's `idempotency_key`), a repeat returns the same job with 200 instead of 202."""
    if idempotency_key is not None:
        if body.idempotency_key not in (None, idempotency_key):
            raise Problem(
                422,
                "Two idempotency keys",
                "the Idempotency-Key header and body.idempotency_key differ; send one of them",
                field="header.Idempotency-Key",
            )
        body = body.model_copy(update={"idempotency_key": idempotency_key})
    order = NewJob(body.type, body.payload, body.idempotency_key)
    job, created = await submit(state, caller.tenant, order)
    if created:
        state.metrics.submitted.labels(job.type).inc()
    else:
        response.status_code = 200
    return job_view(state, job)


@router.get("", summary="List jobs")
async def list_jobs(
    state: StateDep,
    caller: ReadDep,
    session: SessionDep,
    status: JobStatus | None = None,
    type: Annotated[str | None, Query(max_length=64, examples=["webhook"])] = None,
    stage: Annotated[str | None, Query(max_length=64, examples=["deliver"])] = None,
    error_reason: ErrorReason | None = None,
    created_after: IsoTime | None = None,
    created_before: IsoTime | None = None,
    include_archived: bool = False,
    label: Annotated[str | None, Query(max_length=64, examples=["extracting"])] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobPage:
    """Newest first; `next_cursor` fetches the next page. Archived jobs are left out unless
    `include_archived=true` or `status=archived`. `label` filters by a job type's own word for a
    status (see each job's `label`). `counts` are per status for the same filter, on the first page
    (a page fetched with a cursor has none: the walk does not count again)."""
    where = JobFilter(
        caller.tenant,
        status=status.value if status else None,
        type=type,
        archive=ArchiveRule.after(state.settings.archive_after),
        stage=stage,
        error_reason=error_reason.value if error_reason else None,
        created_after=created_after,
        created_before=created_before,
        include_archived=include_archived,
        labels=tuple(state.registry.with_label(label)) if label is not None else None,
    )
    repository = JobRepository(session)
    after = decode_cursor(cursor) if cursor else None
    jobs = await repository.page(where, limit + 1, after)
    more, jobs = len(jobs) > limit, jobs[:limit]
    return JobPage(
        items=[job_view(state, job) for job in jobs],
        next_cursor=encode_cursor(jobs[-1].created_at, jobs[-1].id) if more else None,
        counts=await repository.counts(where) if after is None else None,
    )


@router.get("/{job_id}", summary="Show a job")
async def get_job(job_id: str, state: StateDep, caller: ReadDep, session: SessionDep) -> JobPublic:
    """Status, stage, attempts, next retry time, error, per-stage timings and the Temporal UI link."""
    repository = JobRepository(session)
    job = await repository.get(caller.tenant, job_id)
    if job is None:
        raise Problem(404, "Job not found", f"no job {job_id} for this API key")
    chain = await DeadLetterRepository(session).for_job(caller.tenant, job_id)
    stages, actions = await repository.stages(job_id), await repository.actions(job_id)
    return job_view(state, job, stages, actions, chain, await BreakerStore(session).holding(job_id))


@router.post("/{job_id}/retry", summary="Retry a dead job from the failed stage")
async def retry_job(
    job_id: str, state: StateDep, caller: OperateDep, body: RetryRequest | None = None
) -> RetryPublic:
    """Reset the dead run to the failed stage (or `from_stage`, any stage up to it): earlier stages are
    not run again. With `payload_patch` the job continues there in a new run with the patched payload
    (checked like a submission: 422 naming the field, nothing changed). The reason, the caller and
    the patched fields are recorded. 409 unless dead."""
    request = body or RetryRequest()
    order = RetryOrder(request.from_stage, request.reason, request.force, payload_patch=request.payload_patch)
    outcome = await retry(state, caller.actor, job_id, order)
    state.metrics.replays.labels(outcome.job_type, outcome.mode).inc()
    return RetryPublic.model_validate(outcome, from_attributes=True)


@router.post("/{job_id}/cancel", status_code=202, summary="Cancel a job")
async def cancel_job(
    job_id: str, state: StateDep, caller: OperateDep, body: CancelRequest | None = None
) -> CancelPublic:
    """Stop a queued, running, retrying or pending_review job; a running stage sees it on its next
    heartbeat and the job becomes `cancelled` once it has stopped. 409 for a finished job."""
    run_id = await cancel(state, caller.actor, job_id, (body or CancelRequest()).reason)
    return CancelPublic(job_id=job_id, run_id=run_id, status="cancelling")


@router.post("/{job_id}/review", summary="Approve or reject a job waiting for review")
async def review_job(job_id: str, body: ReviewRequest, state: StateDep, caller: OperateDep) -> ReviewPublic:
    """Decide the review stage: `approve` runs the next stage, `reject` dead-letters the job with reason
    `Rejected`. 409 with the reason when the job is not waiting for a review."""
    result = await review(state, caller.actor, job_id, body.decision, body.comment)
    return ReviewPublic(job_id=job_id, stage=result.stage, decision=result.decision, reviewer=caller.identity)

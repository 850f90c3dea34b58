"""Submitting a job: start its workflow, then project it, so a crash between any two steps leaves
no job or exactly one (the workflow id is the job id; the first stage re-creates a missing row, and
the maintenance pass any row a database outage kept from being written)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from redrive.contracts import JobInput
from redrive.ids import uuid7
from redrive.jobtypes import JobType, UnknownJobType
from redrive.jobtypes.payloads import payload_errors, unstorable
from redrive.jobtypes.registry import Stage
from redrive.operations.errors import Conflict, Invalid
from redrive.operations.services import Services
from redrive.status import JOB_STATUS, JOB_TYPE, TENANT_ID, JobStatus
from redrive.store.jobs import JobRepository
from redrive.store.models import Job
from redrive.store.projection import ProjectionWrites, job_created
from redrive.store.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewJob:
    """A job to start: its type, payload and, optionally, the key that makes a repeat find it."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


def job_id_for(tenant_id: str, idempotency_key: str | None) -> str:
    """The workflow id: derived from the key (hashed, so no client text reaches Temporal), else new
    and time-ordered (`redrive.ids`)."""
    if idempotency_key is None:
        return f"job-{uuid7().hex}"
    digest = hashlib.sha256(f"{tenant_id}\0{idempotency_key}".encode()).hexdigest()
    return f"job-{digest[:32]}"


async def start_job(
    services: Services,
    job_type: JobType,
    job_id: str,
    tenant_id: str,
    payload: dict[str, Any],
    reuse: WorkflowIDReusePolicy,
    plan: tuple[Stage, ...] | None = None,
    start_at: int = 0,
    outputs: dict[str, Any] | None = None,
    conflict: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
) -> str:
    """Start the job's workflow with its type's current plan; its run id. `WorkflowAlreadyStartedError`
    when a run of that id is open (or, by `reuse`, has been)."""
    job = JobInput(
        job_id=job_id,
        tenant_id=tenant_id,
        job_type=job_type.name,
        payload=payload,
        stages=plan if plan is not None else job_type.plan(),
        start_at=start_at,
        outputs=outputs or {},
    )
    handle = await services.temporal.start_workflow(
        job_type.name,  # the dynamic JobWorkflow runs it: the UI shows the job type as its type
        job,
        id=job.job_id,
        task_queue=services.settings.task_queue,
        # A second start of the same id fails, so each request knows whether it started the job.
        id_conflict_policy=conflict,
        id_reuse_policy=reuse,
        run_timeout=job_type.execution_timeout,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(JOB_TYPE, job.job_type),
                SearchAttributePair(TENANT_ID, job.tenant_id),
                SearchAttributePair(JOB_STATUS, JobStatus.QUEUED.value),
            ]
        ),
        static_summary=f"{job.job_type} job",
    )
    return handle.result_run_id or ""


def check_payload(model: type[BaseModel] | None, payload: dict[str, Any]) -> None:
    """`Invalid` naming the first field of `payload` that a store cannot hold or that does not fit the
    job type's model: checked before anything starts, so no stage or bookkeeping meets it later."""
    if found := unstorable(payload):
        field, message = found
        raise Invalid("Invalid payload", f"{field}: {message}", field=field)
    if model is not None and (errors := payload_errors(model, payload)):
        first = errors[0]
        detail = f"{first['field']}: {first['message']}"
        raise Invalid("Invalid payload", detail, field=first["field"], errors=errors)


async def submit(services: Services, tenant_id: str, order: NewJob) -> tuple[Job, bool]:
    """Start (or find) the job; True when this call created it.

    The rule: an answer means exactly one job runs, with exactly the payload it names; a refusal
    means none does. So the workflow's start is the commit point: once it started, the job is
    answered as started whatever happens to its row (the first stage, or the maintenance pass,
    writes a missing one), and a request that did not start it is told whose payload runs."""
    try:
        job_type = services.registry.get(order.type)
    except UnknownJobType as error:
        raise Invalid("Unknown job type", str(error), field="type") from None
    check_payload(job_type.payload_model, order.payload)
    job_id = job_id_for(tenant_id, order.idempotency_key)
    if order.idempotency_key is not None:  # a random id cannot exist yet
        async with services.sessions() as session:
            existing = await JobRepository(session).get(tenant_id, job_id)
        if existing is not None:
            _check_same(order, existing.type, existing.payload)
            return existing, False
    try:
        reuse = WorkflowIDReusePolicy.REJECT_DUPLICATE
        run_id = await start_job(services, job_type, job_id, tenant_id, order.payload, reuse)
    except WorkflowAlreadyStartedError:  # the same key, started by an earlier or racing request
        return await _joined(services, job_type, job_id, tenant_id, order), False
    except RPCError as error:
        run_id = await _started_anyway(services, job_id, error)
    now = utcnow()
    job = Job(
        id=job_id,
        tenant_id=tenant_id,
        type=job_type.name,
        status=JobStatus.QUEUED.value,
        run_id=run_id,
        payload=order.payload,
        idempotency_key=order.idempotency_key,
        max_attempts=job_type.stages[0].retry.max_attempts,
        created_at=now,
        updated_at=now,
    )
    try:  # joins other requests' inserts in one batch
        await services.projection.write(job_created(job))
    except Exception:
        log.warning("job %s started, but its row could not be written yet", job_id, exc_info=True)
    return job, True


def _check_same(order: NewJob, job_type: str, payload: dict[str, Any]) -> None:
    if (job_type, payload) != (order.type, order.payload):
        raise Conflict(
            "Idempotency key reused",
            "idempotency_key was already used for a different type or payload; use a new key",
            field="idempotency_key",
        )


async def _joined(services: Services, job_type: JobType, job_id: str, tenant_id: str, order: NewJob) -> Job:
    """The job another request with the same key started: compared with what its workflow runs (the
    row may not be written yet, or may be gone), and its row written if missing."""
    handle = services.temporal.get_workflow_handle(job_id)
    description = await handle.describe()
    started: JobInput | None = None
    async for event in handle.fetch_history_events():  # the first event holds the job as started
        attributes = event.workflow_execution_started_event_attributes
        (started,) = await services.temporal.data_converter.decode(attributes.input.payloads, [JobInput])
        break
    if started is None:  # the run's history is gone between the two calls: the client may retry
        raise RPCError("the job's history could not be read", RPCStatusCode.UNAVAILABLE, b"")
    _check_same(order, started.job_type, started.payload)
    now = utcnow()
    job = Job(
        id=job_id,
        tenant_id=tenant_id,
        type=job_type.name,
        status=description.typed_search_attributes.get(JOB_STATUS) or JobStatus.QUEUED.value,
        run_id=description.run_id,
        payload=started.payload,
        idempotency_key=order.idempotency_key,
        max_attempts=job_type.stages[0].retry.max_attempts,
        created_at=now,
        updated_at=now,
    )
    async with services.sessions() as session, session.begin():
        return await ProjectionWrites(session).add_if_absent(job)


async def _started_anyway(services: Services, job_id: str, error: RPCError) -> str:
    """After a start that failed without a clear answer (a timeout, a dropped connection): the run
    id if the workflow did start, so the caller answers 202; else `error` again (nothing runs)."""
    try:
        description = await services.temporal.get_workflow_handle(job_id).describe()
    except RPCError as lookup:
        if lookup.status == RPCStatusCode.NOT_FOUND:
            raise error from None
        # Neither answer: the workflow may have started. Say so in the log, where an operator
        # looking for a duplicate finds the id; the 503 tells the client to retry.
        log.error("job %s: start failed (%s) and could not be checked (%s)", job_id, error, lookup)
        raise error from None
    return description.run_id

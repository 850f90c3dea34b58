"""Submitting a job: start its workflow, then project it, so a crash between any two steps leaves
no job or exactly one (the workflow id is the job id; the first stage re-creates a missing row)."""

from __future__ import annotations

import hashlib
import uuid
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

from redrive.contracts import JobInput
from redrive.jobtypes import JobType, UnknownJobType
from redrive.jobtypes.payloads import payload_errors, unstorable
from redrive.operations.errors import Conflict, Invalid
from redrive.operations.services import Services
from redrive.status import JOB_STATUS, JOB_TYPE, TENANT_ID, JobStatus
from redrive.store.jobs import JobRepository
from redrive.store.models import Job
from redrive.store.projection import ProjectionWrites, job_created
from redrive.store.types import utcnow


@dataclass(frozen=True)
class NewJob:
    """A job to start: its type, payload and, optionally, the key that makes a repeat find it."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


def job_id_for(tenant_id: str, idempotency_key: str | None) -> str:
    """The workflow id: derived from the key (hashed, so no client text reaches Temporal), else random."""
    if idempotency_key is None:
        return f"job-{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{tenant_id}\0{idempotency_key}".encode()).hexdigest()
    return f"job-{digest[:32]}"


async def start_job(
    services: Services,
    job_type: JobType,
    job_id: str,
    tenant_id: str,
    payload: dict[str, Any],
    reuse: WorkflowIDReusePolicy,
) -> str:
    """Start the job's workflow with its type's current plan (or join the running one); its run id."""
    job = JobInput(
        job_id=job_id, tenant_id=tenant_id, job_type=job_type.name, payload=payload, stages=job_type.plan()
    )
    handle = await services.temporal.start_workflow(
        job_type.name,  # the dynamic JobWorkflow runs it: the UI shows the job type as its type
        job,
        id=job.job_id,
        task_queue=services.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
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
    """Start (or find) the job; True when this call created it."""
    try:
        job_type = services.registry.get(order.type)
    except UnknownJobType as error:
        raise Invalid("Unknown job type", str(error), field="type") from None
    check_payload(job_type.payload_model, order.payload)
    job_id = job_id_for(tenant_id, order.idempotency_key)
    existing = None
    if order.idempotency_key is not None:  # a random id cannot exist yet
        async with services.sessions() as session:
            existing = await JobRepository(session).get(tenant_id, job_id)
    if existing is not None:
        if (existing.type, existing.payload) != (order.type, order.payload):
            raise Conflict(
                "Idempotency key reused",
                "idempotency_key was already used for a different type or payload; use a new key",
                field="idempotency_key",
            )
        return existing, False  # a row is only ever written after its workflow started
    run_id = None
    status = JobStatus.QUEUED.value
    started = True
    try:
        reuse = WorkflowIDReusePolicy.REJECT_DUPLICATE
        run_id = await start_job(services, job_type, job_id, tenant_id, order.payload, reuse)
    except WorkflowAlreadyStartedError:
        # The job ran to its end already. If its row is missing (a restored database), rebuild
        # it from what Temporal recorded rather than showing a job that never moves.
        started = False
        description = await services.temporal.get_workflow_handle(job_id).describe()
        run_id = description.run_id
        status = description.typed_search_attributes.get(JOB_STATUS) or status
    now = utcnow()
    job = Job(
        id=job_id,
        tenant_id=tenant_id,
        type=job_type.name,
        status=status,
        run_id=run_id,
        payload=order.payload,
        idempotency_key=order.idempotency_key,
        max_attempts=job_type.stages[0].retry.max_attempts,
        created_at=now,
        updated_at=now,
    )
    if started and order.idempotency_key is None:
        # A fresh random id: only its own first stage can have written the row, so the job as
        # submitted is the answer, and its insert joins other requests' in one batch.
        await services.projection.write(job_created(job))
        return job, True
    async with services.sessions() as session, session.begin():
        job = await ProjectionWrites(session).add_if_absent(job)
    return job, started

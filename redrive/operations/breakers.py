"""Circuit breakers: what the API and CLI show of them, an operator's open and close, and the
Temporal calls that hold and release a job's stage (for the breaker's workflow and the stages).

A breaker's state lives in the database; only its workflow (`CircuitBreaker`, one per breaker)
changes it. Everything else asks that workflow by signal, started with the signal if it is not
running, so two workers or an operator racing a worker never act on a breaker twice."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import RetryPolicy, WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    PauseActivityExecutionRequest,
    UnpauseActivityExecutionRequest,
    UpdateActivityExecutionOptionsRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from redrive.breaker_policy import Breaker, BreakerRef
from redrive.contracts import (
    BREAKER_RELEASED,
    BREAKER_WORKFLOW,
    OPERATE_BREAKER,
    BreakerInput,
    BreakerOrder,
)
from redrive.jobtypes import JobTypeRegistry, Stage, UnknownJobType
from redrive.operations.errors import Invalid, NotFound
from redrive.operations.services import Actor, Services
from redrive.settings import Settings
from redrive.store.breakers import CLOSED, BreakerStore, Figures
from redrive.store.types import utcnow

GONE = (RPCStatusCode.NOT_FOUND,)
"""What the server answers for a job's stage that is no longer pending (it finished, or its job
ended): nothing is left to hold or release."""
PAUSED = (RPCStatusCode.FAILED_PRECONDITION,)
"""What pausing a stage already paused answers ("activity is already paused"): as good as paused.
(Unpausing one not paused succeeds.)"""
IDENTITY = "redrive breaker"
PROBE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class BreakerReport:
    """One breaker as an operator sees it: its declaration, state, figures and the jobs it holds."""

    ref: BreakerRef
    declaration: Breaker
    state: str
    since: datetime | None
    reason: str
    actor: str | None
    manual: bool
    cool_down: timedelta
    figures: Figures
    waiting: int
    probe_job_id: str | None


def declared(registry: JobTypeRegistry, job_type: str, stage: str) -> tuple[Stage, Breaker]:
    """The stage and its breaker; `NotFound` naming the breakers that exist."""
    try:
        found = next((s for s in registry.get(job_type).stages if s.name == stage), None)
    except UnknownJobType:
        found = None
    if found is None or found.breaker is None:
        known = ", ".join(f"{ref.job_type}/{ref.stage}" for ref, _ in breaker_stages(registry)) or "none"
        raise NotFound("No such breaker", f"{job_type}/{stage} has no breaker; breakers: {known}")
    return found, found.breaker


def breaker_stages(registry: JobTypeRegistry) -> list[tuple[BreakerRef, Stage]]:
    """Every stage that declares a breaker (its whole-stage ref)."""
    return [
        (BreakerRef(job_type.name, stage.name), stage)
        for job_type in registry.job_types()
        for stage in job_type.stages
        if stage.breaker is not None
    ]


def breaker_input(ref: BreakerRef, stage: Stage) -> BreakerInput:
    """What the breaker's workflow starts with."""
    assert stage.breaker is not None
    return BreakerInput(
        job_type=ref.job_type,
        stage=ref.stage,
        key=ref.key,
        breaker=stage.breaker,
        probe_timeout=stage.start_to_close_timeout + PROBE_MARGIN,
    )


async def send_order(
    client: Client, settings: Settings, ref: BreakerRef, stage: Stage, order: BreakerOrder
) -> None:
    """Hand `order` to the breaker's workflow, starting it with the order if it is not running. Its
    id names the jobs' queue (one breaker per deployment); it runs on the operations queue, and one
    started on the jobs' queue before that existed goes on there."""
    await client.start_workflow(
        BREAKER_WORKFLOW,
        breaker_input(ref, stage),
        id=ref.workflow_id(settings.task_queue),
        task_queue=settings.operations_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=OPERATE_BREAKER,
        start_signal_args=[order],
        static_summary=f"circuit breaker of {ref}",
    )


async def reports(services: Services, job_type: str | None = None) -> list[BreakerReport]:
    """Every declared breaker (each downstream key seen, for a keyed one), closed ones included."""
    async with services.sessions() as session:
        return await read_reports(session, services.registry, job_type)


async def read_reports(
    session: AsyncSession, registry: JobTypeRegistry, job_type: str | None = None
) -> list[BreakerReport]:
    """`reports` within the caller's session."""
    store = BreakerStore(session)
    rows = {(row.job_type, row.stage, row.key): row for row in await store.states(job_type)}
    found: list[BreakerReport] = []
    for whole, stage in breaker_stages(registry):
        if job_type is not None and whole.job_type != job_type:
            continue
        keys = sorted(k for (t, s, k) in rows if (t, s) == (whole.job_type, whole.stage)) or [""]
        for key in keys:
            found.append(await _report(store, BreakerRef(whole.job_type, whole.stage, key), stage))
    return found


async def report(services: Services, ref: BreakerRef) -> BreakerReport:
    """One breaker; `NotFound` when its stage declares none."""
    stage, _ = declared(services.registry, ref.job_type, ref.stage)
    async with services.sessions() as session:
        return await _report(BreakerStore(session), ref, stage)


async def _report(store: BreakerStore, ref: BreakerRef, stage: Stage) -> BreakerReport:
    assert stage.breaker is not None
    row = await store.state(ref)
    window_start = utcnow() - stage.breaker.window
    since = max(window_start, row.since) if row is not None and row.state == CLOSED else window_start
    return BreakerReport(
        ref=ref,
        declaration=stage.breaker,
        state=row.state if row is not None else CLOSED,
        since=row.since if row is not None else None,
        reason=row.reason if row is not None else "",
        actor=row.actor if row is not None else None,
        manual=row.manual if row is not None else False,
        cool_down=timedelta(seconds=row.cool_down_seconds) if row is not None else stage.breaker.cool_down,
        figures=await store.figures(ref, since),
        waiting=await store.waiting(ref),
        probe_job_id=row.probe_job_id if row is not None else None,
    )


async def operate(
    services: Services, actor: Actor, ref: BreakerRef, action: str, reason: str
) -> BreakerReport:
    """An operator opens (held open until closed by hand) or closes a breaker; the breaker's
    workflow acts on it, and the report shows the state before it did."""
    if action not in ("open", "close"):
        raise Invalid("Unknown action", "action must be open or close", field="action")
    stage, _ = declared(services.registry, ref.job_type, ref.stage)
    order = BreakerOrder(action=action, reason=reason, actor=actor.identity)
    await send_order(services.temporal, services.settings, ref, stage, order)
    return await report(services, ref)


async def pause_stage(client: Client, namespace: str, job_id: str, stage: str, reason: str) -> bool:
    """Pause the pending activity of `job_id`'s `stage`: no further attempt until it is unpaused (a
    running attempt would be cancelled: pause only stages waiting for a retry, or your own). False
    when the stage is no longer pending."""
    request = PauseActivityExecutionRequest(
        namespace=namespace,
        workflow_id=job_id,
        activity_id=stage,
        reason=reason[:200],
        identity=IDENTITY,
        request_id=str(uuid.uuid4()),
    )
    return await _unless_gone(client.workflow_service.pause_activity_execution(request), also_done=PAUSED)


async def resume_stage(client: Client, namespace: str, job_id: str, stage: str) -> bool:
    """Unpause a stage the breaker paused: its next attempt runs now, numbered on from the ones
    before the outage (so the error history stays whole). False when it is no longer pending."""
    request = UnpauseActivityExecutionRequest(
        namespace=namespace,
        workflow_id=job_id,
        activity_id=stage,
        reason="its circuit breaker let it go on",
        identity=IDENTITY,
        request_id=str(uuid.uuid4()),
    )
    return await _unless_gone(client.workflow_service.unpause_activity_execution(request))


async def extend_attempts(client: Client, namespace: str, job_id: str, stage: str, maximum: int) -> bool:
    """Allow `job_id`'s `stage` `maximum` attempts in all (its retry policy changed in flight: an
    attempt running now that fails is then retried by this count). False when it is not pending."""
    request = UpdateActivityExecutionOptionsRequest(
        namespace=namespace,
        workflow_id=job_id,
        activity_id=stage,
        activity_options=ActivityOptions(retry_policy=RetryPolicy(maximum_attempts=maximum)),
        update_mask=FieldMask(paths=["retry_policy.maximum_attempts"]),
        identity=IDENTITY,
        request_id=str(uuid.uuid4()),
    )
    return await _unless_gone(client.workflow_service.update_activity_execution_options(request))


async def release_waiting(client: Client, job_id: str) -> bool:
    """Signal a job workflow that waits on a breaker to run its stage again; False when it is gone."""
    handle: WorkflowHandle[object, object] = client.get_workflow_handle(job_id)
    return await _unless_gone(handle.signal(BREAKER_RELEASED))


async def _unless_gone(call: Awaitable[object], also_done: tuple[RPCStatusCode, ...] = ()) -> bool:
    """True once the server took `call` (or answered one of `also_done`); False when what it
    addresses is gone."""
    try:
        await call
    except RPCError as error:
        if error.status in also_done:
            return True
        if error.status in GONE:
            return False
        raise
    return True


async def paused_attempt(client: Client, namespace: str, job_id: str, stage: str) -> tuple[bool, int] | None:
    """Whether `job_id`'s `stage` is paused in Temporal, and its next attempt's number; None when it
    is not pending."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=namespace, execution=WorkflowExecution(workflow_id=job_id))
    )
    for pending in described.pending_activities:
        if pending.activity_id == stage:
            return pending.paused, pending.attempt
    return None

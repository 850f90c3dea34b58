"""The maintenance pass's activities: archive old dead letters, purge long-replayed ones, record runs
that closed without passing through our code (terminated, timed out), and send owed digests.

Each reads the clock from `deps.now`, so tests move time by injecting a clock rather than waiting.
"""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from redrive.activities.alerts import compose_digest, send_email
from redrive.activities.dead_letters import store_dead_letter
from redrive.activities.deps import ActivityDeps
from redrive.activities.notifications import alert_for, announce
from redrive.contracts import (
    ARCHIVE_DEAD_LETTERS,
    PURGE_REPLAYED,
    RECONCILE_CLOSED_RUNS,
    SEND_DIGESTS,
    DeadLetterInput,
    JobInput,
    MaintenanceInput,
)
from redrive.status import JOB_STAGE, ErrorReason
from redrive.store.alerts import AlertWindowRepository
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.jobs import JobRepository
from redrive.store.projection import ProjectionWrites
from redrive.store.tenancy import ALL_TENANTS

CLOSED_WITHOUT_US = {
    WorkflowExecutionStatus.TERMINATED: (ErrorReason.TERMINATED, "WorkflowTerminated"),
    WorkflowExecutionStatus.TIMED_OUT: (ErrorReason.TIMEOUT, "WorkflowTimedOut"),
}


class MaintenanceActivities:
    """Activities of the maintenance schedule."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=ARCHIVE_DEAD_LETTERS)
    async def archive_dead_letters(self, request: MaintenanceInput) -> int:
        """Mark dead letters older than `archive_after` (and their jobs) archived; how many."""
        now = self.deps.now()
        async with self.deps.sessions() as session, session.begin():
            runs = await DeadLetterRepository(session).archive(now - request.archive_after, now)
            await ProjectionWrites(session).archive(runs, now)
        return len(runs)

    @activity.defn(name=PURGE_REPLAYED)
    async def purge_replayed(self, request: MaintenanceInput) -> int:
        """Delete entries replayed more than `purge_replayed_after` ago; how many."""
        now = self.deps.now()
        async with self.deps.sessions() as session, session.begin():
            return await DeadLetterRepository(session).purge(now - request.purge_replayed_after)

    @activity.defn(name=RECONCILE_CLOSED_RUNS)
    async def reconcile_closed_runs(self, request: MaintenanceInput) -> int:
        """Record jobs whose runs were terminated or timed out (no workflow code ran to record them)."""
        client = self.deps.client()
        since = self.deps.now() - request.reconcile_lookback
        query = (
            f'JobType IS NOT NULL AND TaskQueue="{request.task_queue}" '
            f'AND (ExecutionStatus="Terminated" OR ExecutionStatus="TimedOut") '
            f'AND CloseTime >= "{since.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
        )
        closed = [execution async for execution in client.list_workflows(query)]
        if not closed:
            return 0
        async with self.deps.sessions() as session:
            known = await DeadLetterRepository(session).known_runs([e.run_id for e in closed])
        recorded = 0
        for execution in closed:
            if execution.run_id in known:
                continue
            entry = await self._dead_letter_for(client, execution)
            if entry is None:
                continue
            stored = await store_dead_letter(self.deps, entry)
            await announce(self.deps, uuid.UUID(stored.dead_letter_id))
            recorded += 1
            activity.heartbeat(recorded)
        return recorded

    async def _dead_letter_for(self, client: Client, execution: WorkflowExecution) -> DeadLetterInput | None:
        reason, error_type = CLOSED_WITHOUT_US[execution.status or WorkflowExecutionStatus.TERMINATED]
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        started = message = last_scheduled = None
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                started = event.workflow_execution_started_event_attributes
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                last_scheduled = event.activity_task_scheduled_event_attributes.activity_id
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                attributes = event.workflow_execution_terminated_event_attributes
                message = (
                    f"terminated by {attributes.identity or 'unknown'}: {attributes.reason or 'no reason'}"
                )
        if started is None:
            return None
        (job,) = await client.data_converter.decode(started.input.payloads, [JobInput])
        if message is None:
            message = f"the run exceeded its time limit of {started.workflow_run_timeout.ToTimedelta()}"
        async with self.deps.sessions() as session:
            row = await JobRepository(session).get(job.tenant_id, job.job_id)
        if row is not None and row.run_id not in (None, execution.run_id):
            return None  # the job has moved on to a newer run; this one is history
        # Where it stopped: the projection knows it; else the last stage scheduled (activity ids are
        # stage names) or the stage a review waits in. JobStage is unset while a job runs.
        stages = [stage.name for stage in job.stages]
        candidates = (
            row.stage if row is not None else None,
            last_scheduled,
            execution.typed_search_attributes.get(JOB_STAGE),
        )
        stage = next((name for name in candidates if name is not None and name in stages), stages[0])
        return DeadLetterInput(
            job_id=job.job_id,
            run_id=execution.run_id,
            tenant_id=job.tenant_id,
            job_type=job.job_type,
            stage=stage,
            payload=job.payload,
            error_reason=reason,
            error_type=error_type,
            error_message=message,
            attempts=max(row.attempt if row is not None and row.stage == stage else 1, 1),
        )

    @activity.defn(name=SEND_DIGESTS)
    async def send_digests(self, request: MaintenanceInput) -> int:
        """E-mail one digest per fingerprint whose window closed with dead letters only counted. The
        pass's last step: it counts the pass, so an alert can tell when passes stop."""
        self.deps.metrics.maintenance_passes.add(1)
        config = self.deps.alerts
        if not config.email_on:
            return 0
        now = self.deps.now()
        async with self.deps.sessions() as session:
            owed = await AlertWindowRepository(session).owed_digests(now - config.window)
        sent = 0
        for window in owed:
            async with self.deps.sessions() as session:
                where = DeadLetterFilter(ALL_TENANTS, fingerprint=window.fingerprint)
                latest = await DeadLetterRepository(session).search_any(where, 1)
            if latest:
                await send_email(compose_digest(alert_for(latest[0], window.suppressed), config), config)
            async with self.deps.sessions() as session, session.begin():
                await AlertWindowRepository(session).digest_sent(window.fingerprint, window.suppressed)
            sent += bool(latest)
        return sent

"""`repair_projection`: the maintenance step that makes the SQL projection agree with Temporal after
writes were lost (a database outage, a worker killed between a stage's end and its write).

Stage workers write the projection best-effort, so that a database outage never spends a job's
retries; Temporal's history is the truth. This step compares every job run that closed since the
last pass with its rows and, where they disagree (row missing, status not final, a stage still
`running`), rewrites them from the run's history. Its mark moves only when a pass completes, so a
pass after an outage of any length (up to `reconcile_lookback`) still covers it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from redrive.activities.deps import ActivityDeps
from redrive.activities.listing import sum_over_batches
from redrive.contracts import REPAIR_PROJECTION, JobInput, MaintenanceInput
from redrive.status import JobStatus
from redrive.store.jobs import JobRepository, Snapshot
from redrive.store.marks import MarkRepository
from redrive.store.models import Job, JobStage
from redrive.store.projection import ProjectionWrites

log = logging.getLogger(__name__)

MARK = "projection_repair"
OVERLAP = timedelta(minutes=10)
"""Each pass looks this far behind the last one's start: visibility indexes a close a little late."""

FINAL_STAGE = {"complete", "failed", "cancelled"}
EXPECTED = {
    WorkflowExecutionStatus.COMPLETED: JobStatus.COMPLETE,
    WorkflowExecutionStatus.FAILED: JobStatus.DEAD_LETTER,
    WorkflowExecutionStatus.CANCELED: JobStatus.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: JobStatus.DEAD_LETTER,
    WorkflowExecutionStatus.TIMED_OUT: JobStatus.DEAD_LETTER,
}
SAME = {JobStatus.DEAD_LETTER.value: {JobStatus.DEAD_LETTER.value, JobStatus.ARCHIVED.value}}
"""A row whose status is in the set agrees with the status: an archived job is a dead one."""


@dataclass
class _Stage:
    position: int
    attempt: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: str = JobStatus.RUNNING.value


@dataclass
class RunHistory:
    """What a closed run's history says its rows should be."""

    job: JobInput
    started_at: datetime
    closed_at: datetime | None = None
    stages: dict[str, _Stage] = field(default_factory=dict)
    last_stage: str | None = None


def read_history(job: JobInput, started_at: datetime, events: Iterable[HistoryEvent]) -> RunHistory:
    """The rows `events` (a closed run of `job`) imply; pure, so it is tested without a server."""
    positions = {stage.name: n for n, stage in enumerate(job.stages) if stage.kind == "activity"}
    run = RunHistory(job=job, started_at=started_at)
    scheduled: dict[int, str] = {}
    closing = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: (
            "activity_task_completed_event_attributes",
            "complete",
        ),
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: ("activity_task_failed_event_attributes", "failed"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: ("activity_task_timed_out_event_attributes", "failed"),
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: ("activity_task_canceled_event_attributes", "cancelled"),
    }
    for event in events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity_id = event.activity_task_scheduled_event_attributes.activity_id
            if activity_id in positions:  # stage activities are named after their stage; bookkeeping is not
                scheduled[event.event_id] = activity_id
                run.stages[activity_id] = _Stage(position=positions[activity_id], started_at=at)
                run.last_stage = activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if (started := scheduled.get(attributes.scheduled_event_id)) is not None:
                run.stages[started].attempt = attributes.attempt
                run.stages[started].started_at = at
        elif event.event_type in closing:
            attribute, status = closing[event.event_type]
            if (closed := scheduled.get(getattr(event, attribute).scheduled_event_id)) is not None:
                run.stages[closed].status, run.stages[closed].finished_at = status, at
        elif event.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        ):
            run.closed_at = at
    for stage in run.stages.values():  # the run ended under a stage that never finished
        if stage.status == JobStatus.RUNNING.value:
            stage.status, stage.finished_at = "failed", run.closed_at
    return run


def disagrees(execution: WorkflowExecution, row: Snapshot | None) -> bool:
    """Whether the rows of a closed run's job differ from what the run reached (a row taken over by
    a newer run is that run's business)."""
    if row is None:
        return True
    if row.run_id != execution.run_id:
        return False
    expected = EXPECTED[execution.status or WorkflowExecutionStatus.COMPLETED].value
    if row.status not in SAME.get(expected, {expected}):
        return True
    unfinished = any(state not in FINAL_STAGE for state in row.stages.values())
    return unfinished or (row.stage is not None and row.stage not in row.stages)


class RepairActivities:
    """The projection repair."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=REPAIR_PROJECTION)
    async def repair_projection(self, request: MaintenanceInput) -> int:
        """Rewrite the rows of every job whose run closed since the last pass and disagrees with them;
        how many jobs were repaired."""
        now = self.deps.now()
        async with self.deps.sessions() as session:
            mark = await MarkRepository(session).get(MARK)
        oldest = now - request.reconcile_lookback
        since = max(mark - OVERLAP, oldest) if mark is not None else oldest
        query = (
            f'JobType IS NOT NULL AND TaskQueue="{request.task_queue}" '
            f'AND CloseTime >= "{since.strftime("%Y-%m-%dT%H:%M:%SZ")}"'
        )
        client = self.deps.client()
        repaired = await sum_over_batches(client, query, lambda batch: self._repair(client, batch))
        async with self.deps.sessions() as session, session.begin():
            await MarkRepository(session).set(MARK, now)
        return repaired

    async def _repair(self, client: Client, executions: list[WorkflowExecution]) -> int:
        async with self.deps.sessions() as session:
            rows = await JobRepository(session).snapshots([execution.id for execution in executions])
        repaired = 0
        for execution in executions:
            if disagrees(execution, rows.get(execution.id)):
                repaired += await self._rewrite(client, execution)
                activity.heartbeat(repaired)
        return repaired

    async def _rewrite(self, client: Client, execution: WorkflowExecution) -> int:
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        events = [event async for event in handle.fetch_history_events()]
        if not events or not events[0].HasField("workflow_execution_started_event_attributes"):
            return 0
        payloads = events[0].workflow_execution_started_event_attributes.input.payloads
        try:
            (job,) = await client.data_converter.decode(payloads, [JobInput])
        except Exception:  # not a job (a workflow someone else started with our search attribute)
            return 0
        run = read_history(job, events[0].event_time.ToDatetime(tzinfo=UTC), events)
        status = EXPECTED[execution.status or WorkflowExecutionStatus.COMPLETED]
        closed_at = run.closed_at or execution.close_time or self.deps.now()
        last = run.stages.get(run.last_stage or "")
        async with self.deps.sessions() as session, session.begin():
            writes = ProjectionWrites(session)
            current = await session.get(Job, job.job_id)
            if current is not None and current.run_id not in (None, execution.run_id):
                return 0  # a retry has moved the job on since the pass read it
            if current is None or current.status not in SAME.get(status.value, {status.value}):
                row = Job(
                    id=job.job_id,
                    tenant_id=job.tenant_id,
                    type=job.job_type,
                    status=status.value,
                    stage=run.last_stage,
                    run_id=execution.run_id,
                    payload=job.payload,
                    attempt=last.attempt if last else 0,
                    created_at=run.started_at,
                    updated_at=closed_at,
                )
                await writes.terminal(row, stage=run.last_stage, attempt=last.attempt if last else 0)
            for name, stage in run.stages.items():
                await writes.repair_stage(
                    JobStage(
                        job_id=job.job_id,
                        stage=name,
                        position=stage.position,
                        status=stage.status,
                        executions=stage.attempt,
                        attempt=stage.attempt,
                        started_at=stage.started_at,
                        finished_at=stage.finished_at,
                    )
                )
        log.warning(
            "repaired the projection of job %s (run %s): it disagreed with Temporal's history",
            job.job_id,
            execution.run_id,
        )
        return 1

"""After a fault: is every accepted job in Temporal and in SQL exactly once, finished, and do the two
agree (stage rows included)? Counted into a `Report` the suite prints per test."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import col
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from redrive.jobtypes.builtin import DEMO
from redrive.store.engine import create_engine
from redrive.store.models import JOB_STAGES, JOBS, STAGE_FAILURES, DeadLetter
from tests.faults.harness import Stack

EXPECTED = {
    WorkflowExecutionStatus.COMPLETED: "complete",
    WorkflowExecutionStatus.FAILED: "dead_letter",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}
STAGES = [stage.name for stage in DEMO.stages]


@dataclass
class Report:
    """One fault test's figures."""

    test: str
    jobs: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    disagreements: int = 0
    recovery_s: float = 0.0
    server_errors: int = 0
    refused_but_ran: int = 0
    details: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        counts = (self.lost, self.duplicated, self.stuck, self.disagreements, self.server_errors)
        return not any(counts) and not self.refused_but_ran

    def line(self) -> str:
        return (
            f"{self.test:<32} jobs {self.jobs:>4}  lost {self.lost}  duplicated {self.duplicated}  "
            f"stuck {self.stuck}  disagreements {self.disagreements}  5xx {self.server_errors}  "
            f"503-left-a-job {self.refused_but_ran}  recovery {self.recovery_s:5.1f} s"
        )


async def wait_closed(stack: Stack, job_ids: set[str], within: float) -> tuple[set[str], float]:
    """Wait until every job's run has closed; the ones still open, and the seconds it took."""
    assert stack.client is not None
    began = time.monotonic()
    open_ = set(job_ids)
    while open_ and time.monotonic() - began < within:
        for job_id in list(open_):
            try:
                description = await stack.client.get_workflow_handle(job_id).describe()
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    open_.discard(job_id)  # counted as lost by the audit
                    continue
                raise
            if description.status != WorkflowExecutionStatus.RUNNING:
                open_.discard(job_id)
        if open_:
            await asyncio.sleep(0.5)
    return open_, time.monotonic() - began


async def maintenance_pass(stack: Stack) -> None:
    """Run one maintenance pass now (reconcile and projection repair) and wait for it."""
    assert stack.client is not None
    schedule = stack.client.get_schedule_handle(f"redrive-maintenance-{stack.settings.task_queue}")
    before = {e.id async for e in stack.client.list_workflows('WorkflowType="MaintenanceWorkflow"')}
    await schedule.trigger()
    for _ in range(600):
        passes = [e async for e in stack.client.list_workflows('WorkflowType="MaintenanceWorkflow"')]
        new = [e for e in passes if e.id not in before]
        if new and all(e.status != WorkflowExecutionStatus.RUNNING for e in new):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the maintenance pass did not finish within 120 s")


async def failures_of_type(stack: Stack, error_type: str) -> set[str]:
    """The jobs with a recorded failed attempt of `error_type`."""
    engine = create_engine(stack.database_url)
    async with engine.connect() as connection:
        query = sa.select(STAGE_FAILURES.c.job_id).where(STAGE_FAILURES.c.error_type == error_type)
        found = {job_id for (job_id,) in await connection.execute(query)}
    await engine.dispose()
    return found


async def audit(
    stack: Stack,
    report: Report,
    accepted: set[str],
    refused: frozenset[str] | set[str] = frozenset(),
    within: float = 120,
) -> Report:
    """Fill `report` for the jobs the API accepted (`accepted`) and refused with a 5xx (`refused`)."""
    assert stack.client is not None
    report.jobs = len(accepted)
    still_open, _ = await wait_closed(stack, accepted, within)
    report.stuck = len(still_open)
    await maintenance_pass(stack)
    query = f'JobType IS NOT NULL AND TaskQueue="{stack.settings.task_queue}"'
    runs: dict[str, list[WorkflowExecutionStatus | None]] = {}
    async for execution in stack.client.list_workflows(query):
        runs.setdefault(execution.id, []).append(execution.status)
    report.refused_but_ran = len(refused & runs.keys())
    report.duplicated = len(runs.keys() - accepted - refused)
    engine = create_engine(stack.database_url)
    async with engine.connect() as connection:
        jobs = {row.id: row for row in await connection.execute(sa.select(JOBS))}
        stages: dict[str, dict[str, str]] = {}
        for row in await connection.execute(sa.select(JOB_STAGES)):
            stages.setdefault(row.job_id, {})[row.stage] = row.status
        entries: dict[tuple[str, str], int] = {}
        recorded = sa.select(col(DeadLetter.original_job_id), col(DeadLetter.run_id))
        for dead_job, dead_run in await connection.execute(recorded):
            entries[(dead_job, dead_run)] = entries.get((dead_job, dead_run), 0) + 1
    await engine.dispose()
    for job_id in sorted(accepted):
        if job_id not in runs or job_id not in jobs:
            report.lost += 1
            report.details.append(f"{job_id}: in Temporal {job_id in runs}, in SQL {job_id in jobs}")
            continue
        if job_id in still_open:
            continue
        description = await stack.client.get_workflow_handle(job_id).describe()
        found = jobs[job_id], stages.get(job_id, {})
        problem = _disagreement(description.status, description.run_id, *found, entries)
        if problem:
            report.disagreements += 1
            report.details.append(f"{job_id}: {problem}")
    return report


def _disagreement(
    status: WorkflowExecutionStatus | None,
    run_id: str,
    row: sa.Row[tuple[object, ...]],
    stages: dict[str, str],
    entries: dict[tuple[str, str], int],
) -> str | None:
    expected = EXPECTED.get(status or WorkflowExecutionStatus.RUNNING)
    if row.status != expected or row.run_id != run_id:
        return f"SQL {row.status} run {row.run_id}, Temporal {expected} run {run_id}"
    if expected == "complete":
        want = dict.fromkeys(STAGES, "complete")
    elif expected == "dead_letter":
        if entries.get((row.id, run_id)) != 1:
            return f"{entries.get((row.id, run_id), 0)} dead-letter entries for the run"
        failed = STAGES.index(row.stage)
        want = {**dict.fromkeys(STAGES[:failed], "complete"), row.stage: "failed"}
    else:
        return None
    return None if stages == want else f"stage rows {stages}, expected {want}"

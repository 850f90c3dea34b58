"""The deletion of dead runs that a retry's reset replaced, so the Temporal UI lists only jobs that
are dead.

`delete_superseded_run`: one check that such a run is gone; it fails while the run is still there,
so its workflow's retry policy checks again (see `workflows/superseded_run.py`). The delete itself is
asked for once. Each `DeleteWorkflowExecution` adds a task to the server's transfer queue that
retries itself (backing off to 3 minutes) until the run's close is acknowledged there, which the
server records every 30 s or so. Sending it again on every check piled those tasks up, and each one
still waiting held back the acknowledgement that every later delete waits for: after a burst of
retries, dead runs stayed listed for minutes.

`forget_superseded_runs`: the maintenance pass's sweep for replaced runs whose deletion nobody asked
for, because the process that reset them died before it could (between the reset and `forget`).
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowExecution
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError, RPCStatusCode

from redrive.activities.deps import ActivityDeps
from redrive.activities.listing import sum_over_batches
from redrive.contracts import DELETE_SUPERSEDED_RUN, FORGET_SUPERSEDED_RUNS, MaintenanceInput, SupersededRun
from redrive.operations.retry import forget, request_delete
from redrive.store.jobs import JobRepository

RESEND_EVERY = 20
"""The delete is sent again on every 20th check (minutes apart), in case a request was lost."""


def sends_delete(run: SupersededRun, attempt: int) -> bool:
    """Whether check number `attempt` (from 1) asks the server to delete `run`."""
    if attempt == 1:
        return not run.delete_sent
    return (attempt - 1) % RESEND_EVERY == 0


class SupersededRunActivities:
    """Activities that clean up after retries."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=DELETE_SUPERSEDED_RUN)
    async def delete_superseded_run(self, run: SupersededRun) -> None:
        """Delete `run` (on the checks `sends_delete` picks); succeed once Temporal no longer knows it."""
        client = self.deps.client()
        try:
            if sends_delete(run, activity.info().attempt):
                await request_delete(client, run.job_id, run.run_id)
            await client.get_workflow_handle(run.job_id, run_id=run.run_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return
            raise
        raise ApplicationError(
            f"run {run.run_id} of {run.job_id} still exists",
            type="RunStillExists",
            category=ApplicationErrorCategory.BENIGN,  # expected at first: no warning in the logs
        )

    @activity.defn(name=FORGET_SUPERSEDED_RUNS)
    async def forget_superseded_runs(self, request: MaintenanceInput) -> int:
        """Hand every dead run that a reset replaced to its deletion (`forget`, which joins one
        already under way); how many were handed over. Not bounded by `reconcile_lookback`: a run
        that died long ago may be retried today. The namespace's retention bounds the listing."""
        query = f'JobStatus="dead_letter" AND TaskQueue="{request.task_queue}" AND ExecutionStatus="Failed"'
        client = self.deps.client()
        return await sum_over_batches(client, query, lambda batch: self._forget(client, batch))

    async def _forget(self, client: Client, executions: list[WorkflowExecution]) -> int:
        async with self.deps.sessions() as session:
            rows = await JobRepository(session).snapshots([execution.id for execution in executions])
        services, forgotten = self.deps.operations(), 0
        for execution in executions:
            row = rows.get(execution.id)
            if row is None or row.run_id in (None, execution.run_id):
                continue  # the job is on this run still: dead, not superseded
            if not await _reset_since(client, execution):
                continue  # a new run of its own (a patched payload): the dead run records what failed
            await forget(services, execution.id, execution.run_id, closed_at=execution.close_time)
            forgotten += 1
            activity.heartbeat(forgotten)
        return forgotten


async def _reset_since(client: Client, execution: WorkflowExecution) -> bool:
    """Whether a reset replaced `execution` (Temporal records the run it reset to)."""
    try:
        description = await client.get_workflow_handle(execution.id, run_id=execution.run_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False  # deleted since the listing
        raise
    return bool(description.raw_description.workflow_extended_info.reset_run_id)

"""`delete_superseded_run`: one check that a run a retry replaced is gone; it fails while the run is
still there, so its workflow's retry policy checks again (see `workflows/superseded_run.py`).

The delete itself is asked for once. Each `DeleteWorkflowExecution` adds a task to the server's
transfer queue that retries itself (backing off to 3 minutes) until the run's close is acknowledged
there, which the server records every 30 s or so. Sending it again on every check piled those tasks
up, and each one still waiting held back the acknowledgement that every later delete waits for: after
a burst of retries, dead runs stayed listed for minutes.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError, RPCStatusCode

from redrive.activities.deps import ActivityDeps
from redrive.contracts import DELETE_SUPERSEDED_RUN, SupersededRun

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
        execution = WorkflowExecution(workflow_id=run.job_id, run_id=run.run_id)
        try:
            if sends_delete(run, activity.info().attempt):
                await client.workflow_service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(namespace=client.namespace, workflow_execution=execution)
                )
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

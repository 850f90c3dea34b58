"""`delete_superseded_run`: one try at deleting a run a retry replaced; it fails while the run is
still there, so its workflow's retry policy tries again (see `workflows/superseded_run.py`)."""

from __future__ import annotations

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError, RPCStatusCode

from redrive.activities.deps import ActivityDeps
from redrive.contracts import DELETE_SUPERSEDED_RUN, SupersededRun


class SupersededRunActivities:
    """Activities that clean up after retries."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=DELETE_SUPERSEDED_RUN)
    async def delete_superseded_run(self, run: SupersededRun) -> None:
        """Delete `run`; succeed once Temporal no longer knows it."""
        client = self.deps.client()
        execution = WorkflowExecution(workflow_id=run.job_id, run_id=run.run_id)
        try:
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

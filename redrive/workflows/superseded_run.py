"""`SupersededRunWorkflow`: deletes a dead run that a retry's reset replaced, so that
`JobStatus="dead_letter"` in the Temporal UI lists only jobs that are dead.

A closed run keeps its last search attributes, so a retried job's old run would stay listed as
dead forever. Everything an operator needs from it is kept: the payload and every attempt's error
in the dead-letter row, the history up to the failed stage in the new run. The server deletes a run
only once its close is acknowledged in its transfer queue (recorded every 30 s or so), so this
workflow starts `SETTLE` (40 s) after the run closed (`operations.retry.forget`); the activity asks
for the delete once and checks that the run is gone, and Temporal retries it until it is.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from redrive.contracts import DELETE_SUPERSEDED_RUN, SUPERSEDED_RUN_WORKFLOW, SupersededRun

DELETE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2,
    maximum_interval=timedelta(seconds=15),
)
GIVE_UP_AFTER = timedelta(minutes=30)


@workflow.defn(name=SUPERSEDED_RUN_WORKFLOW)
class SupersededRunWorkflow:
    """Delete one superseded run, retrying until it is gone (or `GIVE_UP_AFTER` has passed)."""

    @workflow.run
    async def run(self, run: SupersededRun) -> None:
        await workflow.execute_activity(
            DELETE_SUPERSEDED_RUN,
            run,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=GIVE_UP_AFTER,
            retry_policy=DELETE_RETRY,
        )

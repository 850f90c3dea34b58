"""`MaintenanceWorkflow`: one pass of dead-letter housekeeping, started by a Temporal Schedule."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from redrive.contracts import (
        ARCHIVE_DEAD_LETTERS,
        FORGET_SUPERSEDED_RUNS,
        MAINTENANCE_WORKFLOW,
        PURGE_REPLAYED,
        RECONCILE_CLOSED_RUNS,
        REPAIR_PROJECTION,
        SEND_DIGESTS,
        MaintenanceInput,
        MaintenanceResult,
    )

# A failed step is retried a few times; the next scheduled pass picks up whatever is left.
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3)


@workflow.defn(name=MAINTENANCE_WORKFLOW)
class MaintenanceWorkflow:
    """Archive, purge, reconcile, repair the projection, have superseded dead runs deleted, then send
    owed digests."""

    @workflow.run
    async def run(self, request: MaintenanceInput) -> MaintenanceResult:
        archived = await self._step(ARCHIVE_DEAD_LETTERS, request)
        purged = await self._step(PURGE_REPLAYED, request)
        reconciled = await self._step(RECONCILE_CLOSED_RUNS, request)
        # Patched steps: a pass already running when a step was added goes on without it.
        repaired = await self._step(REPAIR_PROJECTION, request) if workflow.patched(REPAIR_PROJECTION) else 0
        forgotten = 0
        if workflow.patched(FORGET_SUPERSEDED_RUNS):
            forgotten = await self._step(FORGET_SUPERSEDED_RUNS, request)
        digests = await self._step(SEND_DIGESTS, request)
        return MaintenanceResult(
            archived=archived,
            purged=purged,
            reconciled=reconciled,
            repaired=repaired,
            forgotten=forgotten,
            digests=digests,
        )

    @staticmethod
    async def _step(activity: str, request: MaintenanceInput) -> int:
        count: int = await workflow.execute_activity(
            activity,
            request,
            result_type=int,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=STEP_RETRY,
        )
        return count

"""`MaintenanceWorkflow`: one pass of dead-letter housekeeping, started by a Temporal Schedule."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from redrive.messages import MAINTENANCE_WORKFLOW, MaintenanceInput, MaintenanceResult

# A failed step is retried a few times; the next scheduled pass picks up whatever is left.
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3)


@workflow.defn(name=MAINTENANCE_WORKFLOW)
class MaintenanceWorkflow:
    """Archive, purge, reconcile, then send owed digests."""

    @workflow.run
    async def run(self, request: MaintenanceInput) -> MaintenanceResult:
        return MaintenanceResult(
            archived=await self._step(MaintenanceActivities.archive_dead_letters, request),
            purged=await self._step(MaintenanceActivities.purge_replayed, request),
            reconciled=await self._step(MaintenanceActivities.reconcile_closed_runs, request),
            digests=await self._step(MaintenanceActivities.send_digests, request),
        )

    @staticmethod
    async def _step(
        method: Callable[[MaintenanceActivities, MaintenanceInput], Awaitable[int]], request: MaintenanceInput
    ) -> int:
        count: int = await workflow.execute_activity_method(
            method,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=STEP_RETRY,
        )
        return count

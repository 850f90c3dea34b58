"""`record_status`: the workflow's own status changes, projected into the `jobs` table.

Run as a local activity: it adds no server round trip to the job (its result rides on the next
workflow task completion), which keeps the projection's cost off the throughput.
"""

from __future__ import annotations

import logging

from temporalio import activity

from redrive.activities.deps import ActivityDeps
from redrive.contracts import RECORD_STATUS, StatusInput
from redrive.logs import job_fields
from redrive.status import JobStatus
from redrive.store.projection import status_changed

log = logging.getLogger(__name__)


class ProjectionActivities:
    """Activities that write the job projection."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name=RECORD_STATUS)
    async def record_status(self, change: StatusInput) -> None:
        """Write `change` to the job's row, if the row still belongs to that run."""
        now = self.deps.now()
        await self.deps.projection.write(
            status_changed(change.job_id, change.run_id, change.status, now, change.stage)
        )
        if change.status == JobStatus.COMPLETE:  # the last stage could not project it (or was a review)
            log.info(
                "job %s complete",
                change.job_id,
                extra=job_fields(
                    job_id=change.job_id,
                    run_id=change.run_id,
                    job_type=change.job_type or None,
                    stage=change.stage,
                ),
            )
            self.deps.metrics.completed.add(1, {"job_type": change.job_type})

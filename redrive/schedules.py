"""The maintenance schedule, created (or brought up to date) by every worker at start-up, so it is
visible and pausable in the Temporal UI under Schedules."""

from __future__ import annotations

import logging

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from redrive.contracts import MAINTENANCE_WORKFLOW, MaintenanceInput
from redrive.settings import Settings

log = logging.getLogger(__name__)


def maintenance_schedule_id(settings: Settings) -> str:
    """One schedule per task queue."""
    return f"redrive-maintenance-{settings.task_queue}"


def maintenance_schedule(settings: Settings) -> Schedule:
    """Every `maintenance_interval`, one pass at a time."""
    request = MaintenanceInput(
        task_queue=settings.task_queue,
        archive_after=settings.archive_after,
        purge_replayed_after=settings.purge_replayed_after,
        reconcile_lookback=settings.reconcile_lookback,
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MAINTENANCE_WORKFLOW,
            request,
            id=f"{maintenance_schedule_id(settings)}-pass",
            task_queue=settings.task_queue,
            static_summary="redrive maintenance: archive, purge, reconcile, digests",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.maintenance_interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_maintenance_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or update it to the current settings; idempotent."""
    schedule = maintenance_schedule(settings)
    schedule_id = maintenance_schedule_id(settings)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def update(_current: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(update)
    except RPCError as error:
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        log.warning("this Temporal server has no schedules; dead-letter maintenance will not run")

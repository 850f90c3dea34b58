"""Everything with side effects: stage handlers, the dead-letter recorder, the status projection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from redrive.activities.breakers import BreakerActivities
from redrive.activities.campaigns import CampaignActivities
from redrive.activities.dead_letters import DeadLetterActivities
from redrive.activities.deps import ActivityDeps
from redrive.activities.maintenance import MaintenanceActivities
from redrive.activities.missing import handler_missing
from redrive.activities.notifications import NotificationActivities
from redrive.activities.projection import ProjectionActivities
from redrive.activities.repair import RepairActivities
from redrive.activities.stages import StageActivities
from redrive.activities.superseded_runs import SupersededRunActivities
from redrive.context import Handler


def build_activities(deps: ActivityDeps, handlers: Mapping[str, Handler]) -> list[Callable[..., Any]]:
    """The activities a worker registers: one per stage handler (by activity type), plus redrive's own."""
    stages = StageActivities(deps)
    return [
        *(stages.activity(name, handler) for name, handler in handlers.items()),
        DeadLetterActivities(deps).record_dead_letter,
        NotificationActivities(deps).notify_dead_letter,
        *_maintenance(MaintenanceActivities(deps)),
        ProjectionActivities(deps).record_status,
        RepairActivities(deps).repair_projection,
        SupersededRunActivities(deps).delete_superseded_run,
        *campaign_activities(deps),
        *_breakers(BreakerActivities(deps)),
        handler_missing,
    ]


def campaign_activities(deps: ActivityDeps) -> list[Callable[..., Any]]:
    """A replay campaign's steps (the operations worker's activities)."""
    activities = CampaignActivities(deps)
    return [
        activities.count_campaign_entries,
        activities.select_campaign_entries,
        activities.replay_campaign_entries,
        activities.campaign_fates,
        activities.forget_campaign_runs,
    ]


def _breakers(activities: BreakerActivities) -> list[Callable[..., Any]]:
    return [
        activities.open_breaker,
        activities.half_open_breaker,
        activities.close_breaker,
        activities.release_held_jobs,
        activities.hold_at_breaker,
    ]


def _maintenance(activities: MaintenanceActivities) -> list[Callable[..., Any]]:
    return [
        activities.archive_dead_letters,
        activities.purge_replayed,
        activities.reconcile_closed_runs,
        activities.send_digests,
    ]


__all__ = ["ActivityDeps", "build_activities", "campaign_activities"]

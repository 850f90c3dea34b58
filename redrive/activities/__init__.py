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
        *_superseded(SupersededRunActivities(deps)),
        *operations_activities(deps),  # for campaigns and breakers started before that queue existed
        BreakerActivities(deps).hold_at_breaker,
        handler_missing,
    ]


def operations_activities(deps: ActivityDeps) -> list[Callable[..., Any]]:
    """The operations worker's activities: a replay campaign's steps and a breaker's moves."""
    campaigns, breakers = CampaignActivities(deps), BreakerActivities(deps)
    return [
        campaigns.count_campaign_entries,
        campaigns.select_campaign_entries,
        campaigns.replay_campaign_entries,
        campaigns.campaign_fates,
        campaigns.forget_campaign_runs,
        breakers.open_breaker,
        breakers.half_open_breaker,
        breakers.close_breaker,
        breakers.release_held_jobs,
    ]


def _superseded(activities: SupersededRunActivities) -> list[Callable[..., Any]]:
    return [activities.delete_superseded_run, activities.forget_superseded_runs]


def _maintenance(activities: MaintenanceActivities) -> list[Callable[..., Any]]:
    return [
        activities.archive_dead_letters,
        activities.purge_replayed,
        activities.reconcile_closed_runs,
        activities.send_digests,
    ]


__all__ = ["ActivityDeps", "build_activities", "operations_activities"]

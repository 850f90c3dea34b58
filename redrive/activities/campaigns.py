"""The steps of a replay campaign (`workflows/replay_campaign.py`), each a call into
`redrive.operations.campaigns`, which the API shares."""

from __future__ import annotations

from temporalio import activity

from redrive.activities.deps import ActivityDeps
from redrive.contracts import (
    CAMPAIGN_FATES,
    COUNT_CAMPAIGN_ENTRIES,
    FORGET_CAMPAIGN_RUNS,
    REPLAY_CAMPAIGN_ENTRIES,
    SELECT_CAMPAIGN_ENTRIES,
    CampaignFates,
    CampaignRef,
    EntryRef,
    ReplayedEntries,
    ReplayEntries,
    SelectEntries,
)
from redrive.operations import campaign_steps, campaigns


class CampaignActivities:
    """Select, replay, count and clean up for campaigns, with the worker's operations services."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps
        self.gates = campaign_steps.CampaignGates()

    @activity.defn(name=COUNT_CAMPAIGN_ENTRIES)
    async def count_campaign_entries(self, request: SelectEntries) -> int:
        """How many pending entries the campaign's filter matches."""
        return await campaigns.count_entries(self.deps.operations(), request)

    @activity.defn(name=SELECT_CAMPAIGN_ENTRIES)
    async def select_campaign_entries(self, request: SelectEntries) -> list[EntryRef]:
        """The next page of entries to take."""
        return await campaigns.select_entries(self.deps.operations(), request)

    @activity.defn(name=REPLAY_CAMPAIGN_ENTRIES)
    async def replay_campaign_entries(self, request: ReplayEntries) -> ReplayedEntries:
        """Replay one step's entries, heartbeating while at it."""
        gate = self.gates(request.campaign_id)
        return await campaign_steps.replay_entries(self.deps.operations(), request, activity.heartbeat, gate)

    @activity.defn(name=CAMPAIGN_FATES)
    async def campaign_fates(self, campaign: CampaignRef) -> CampaignFates:
        """What became of the jobs the campaign replayed."""
        return await campaigns.fates(self.deps.operations(), campaign.campaign_id, campaign.tenant_id)

    @activity.defn(name=FORGET_CAMPAIGN_RUNS)
    async def forget_campaign_runs(self, campaign: CampaignRef) -> int:
        """Delete the runs the campaign's resets replaced."""
        return await campaigns.forget_replaced_runs(self.deps.operations(), campaign, activity.heartbeat)

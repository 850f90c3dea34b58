"""`/v1/replays`: replay campaigns — start one (or count with a dry run), list, show, pause, resume,
cancel. A campaign is a `ReplayCampaign` workflow, also visible in the Temporal UI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from redrive.api.deps import OperateDep, ReadDep, StateDep
from redrive.api.views import campaign_order, campaign_view, dead_letter_view
from redrive.contracts import CampaignFates
from redrive.operations import campaign_report, list_campaigns, preview, start_campaign, steer
from redrive.operations.campaigns import CampaignReport, Steer, pending_filter
from redrive.schemas import (
    MAX_PAGE,
    PROBLEMS,
    CampaignList,
    CampaignPreview,
    CampaignPublic,
    CampaignRequest,
    CampaignSummary,
)
from redrive.store.archival import ArchiveRule

router = APIRouter(prefix="/v1/replays", tags=["replay campaigns"], responses=PROBLEMS)
CampaignId = Annotated[str, Path(max_length=64)]


@router.post(
    "",
    status_code=202,
    summary="Start a replay campaign",
    responses={200: {"model": CampaignPreview, "description": "A dry run: nothing was started."}},
)
async def start(
    body: CampaignRequest, state: StateDep, caller: OperateDep, response: Response
) -> CampaignPublic | CampaignPreview:
    """Replay the caller's pending dead letters matching `filter` (up to `max`, paced to `rate` per
    second) in a campaign that survives restarts: 202 with its id at once; follow it with
    `GET /v1/replays/{id}`. With `canary`, the first entries are replayed alone and the campaign
    stops by itself when too many of them die again. `dry_run` only counts and samples (200)."""
    order = campaign_order(body, body.canary)
    if body.dry_run:
        matched, sample = await preview(state, caller.actor, pending_filter(caller.tenant, order.where))
        response.status_code = 200
        archive = ArchiveRule.after(state.settings.archive_after)
        return CampaignPreview(matched=matched, sample=[dead_letter_view(entry, archive) for entry in sample])
    request = await start_campaign(state, caller.actor, order)
    response.headers["Location"] = f"/v1/replays/{request.campaign_id}"
    return campaign_view(CampaignReport(request, "RUNNING", CampaignFates()))


@router.get("", summary="List replay campaigns")
async def list_(
    state: StateDep, caller: ReadDep, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
) -> CampaignList:
    """The caller's latest campaigns, newest first (from Temporal's visibility)."""
    found = await list_campaigns(state, caller.actor, limit)
    return CampaignList(
        items=[CampaignSummary(id=id_, workflow_status=status, started_at=at) for id_, status, at in found]
    )


@router.get("/{campaign_id}", summary="Show a replay campaign")
async def show(campaign_id: CampaignId, state: StateDep, caller: ReadDep) -> CampaignPublic:
    """Its order and progress (from the workflow), and what became of the jobs it replayed (from the
    database, now)."""
    return campaign_view(await campaign_report(state, caller.actor, campaign_id))


async def _steer(campaign_id: str, state: StateDep, caller: OperateDep, how: Steer) -> CampaignPublic:
    return campaign_view(await steer(state, caller.actor, campaign_id, how))


@router.post("/{campaign_id}/pause", summary="Pause a replay campaign")
async def pause(campaign_id: CampaignId, state: StateDep, caller: OperateDep) -> CampaignPublic:
    """Replay nothing more until resumed (the step under way, a second's worth, finishes)."""
    return await _steer(campaign_id, state, caller, "pause")


@router.post("/{campaign_id}/resume", summary="Resume a paused replay campaign")
async def resume(campaign_id: CampaignId, state: StateDep, caller: OperateDep) -> CampaignPublic:
    """Go on from where it was paused."""
    return await _steer(campaign_id, state, caller, "resume")


@router.post("/{campaign_id}/cancel", summary="Cancel a replay campaign")
async def cancel(campaign_id: CampaignId, state: StateDep, caller: OperateDep) -> CampaignPublic:
    """Replay nothing more and end; what it replayed stays replayed."""
    return await _steer(campaign_id, state, caller, "cancel")

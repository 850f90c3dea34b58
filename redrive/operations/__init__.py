"""Business operations on jobs — submit, retry, replay, cancel, review — for the API, the CLI, a
workflow or a test alike. They know nothing of HTTP: each refusal is an `OperationError`
(`NotFound`, `Conflict`, `Invalid`), which `api/problems.py` turns into problem+json.
"""

from redrive.operations.campaigns import (
    CampaignOrder,
    CampaignReport,
    campaign_outcome,
    campaign_report,
    list_campaigns,
    start_campaign,
    steer,
)
from redrive.operations.errors import Conflict, Invalid, NotFound, OperationError, Unanswered
from redrive.operations.intervene import cancel, review
from redrive.operations.replay import preview, replay_one
from redrive.operations.retry import RetryOrder, RetryOutcome, reset_point, retry
from redrive.operations.services import Actor, Services
from redrive.operations.submit import NewJob, submit

__all__ = [
    "Actor",
    "CampaignOrder",
    "CampaignReport",
    "Conflict",
    "Invalid",
    "NewJob",
    "NotFound",
    "OperationError",
    "RetryOrder",
    "RetryOutcome",
    "Services",
    "Unanswered",
    "campaign_outcome",
    "campaign_report",
    "cancel",
    "list_campaigns",
    "preview",
    "replay_one",
    "reset_point",
    "retry",
    "review",
    "start_campaign",
    "steer",
    "submit",
]

"""Business operations on jobs — submit, retry, replay, cancel, review — for the API, the CLI, a
workflow or a test alike. They know nothing of HTTP: each refusal is an `OperationError`
(`NotFound`, `Conflict`, `Invalid`), which `api/problems.py` turns into problem+json.
"""

from redrive.operations.errors import Conflict, Invalid, NotFound, OperationError
from redrive.operations.intervene import cancel, review
from redrive.operations.replay import BulkReplayOrder, BulkReplayOutcome, ReplayItem, replay_many, replay_one
from redrive.operations.retry import RetryOrder, RetryOutcome, reset_point, retry
from redrive.operations.services import Actor, Services
from redrive.operations.submit import NewJob, submit

__all__ = [
    "Actor",
    "BulkReplayOrder",
    "BulkReplayOutcome",
    "Conflict",
    "Invalid",
    "NewJob",
    "NotFound",
    "OperationError",
    "ReplayItem",
    "RetryOrder",
    "RetryOutcome",
    "Services",
    "cancel",
    "replay_many",
    "replay_one",
    "reset_point",
    "retry",
    "review",
    "submit",
]

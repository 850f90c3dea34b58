"""The catch-all activity: a stage whose handler this worker does not have fails permanently.

Without it Temporal reports a retryable `NotFoundError` and the job would spend its retry budget
on a deployment mistake before reaching the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from redrive.status import ErrorReason


@activity.defn(dynamic=True)
async def handler_missing(_args: Sequence[RawValue]) -> None:
    """Fail the stage at once with `HandlerMissing`."""
    name = activity.info().activity_type
    raise ApplicationError(
        f"no handler for activity {name!r} on worker {activity.info().task_queue}; "
        "deploy a worker that registers it, then retry the job",
        {"attempt": activity.info().attempt},
        type=ErrorReason.HANDLER_MISSING.value,
        non_retryable=True,
    )

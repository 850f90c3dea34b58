"""What a stage handler is given (`StageContext`), and the shape every handler has (`Handler`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio import activity

log = logging.getLogger("redrive.stage")


@dataclass(frozen=True)
class StageContext:
    """One attempt of one stage: the job's payload, the outputs of the stages before it, the attempt
    number, a shared HTTP client, and the ways to talk to Temporal while the attempt runs.

    A handler returns the stage's output (any JSON value), raises a `PermanentError` to send the job
    to the dead-letter queue at once, or raises anything else to be retried by the stage's
    declaration (`RetryableError(retry_after=...)` asks for a given delay before the next attempt).
    """

    job_id: str
    job_type: str
    stage: str
    attempt: int
    payload: dict[str, Any]
    outputs: dict[str, Any]
    http: httpx.AsyncClient
    tenant_id: str = ""
    _details: list[tuple[Any, ...]] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the job id, job type, stage, attempt and tenant."""
        extra = {
            "job_id": self.job_id,
            "job_type": self.job_type,
            "stage": self.stage,
            "attempt": self.attempt,
            "tenant": self.tenant_id,
        }
        return logging.LoggerAdapter(log, extra)

    def heartbeat(self, *details: Any) -> None:
        """Say the attempt is alive (and, with `details`, how far it got); a long stage should call
        this often, since that is also how it learns that its job was cancelled."""
        self._details[:] = [details]
        if activity.in_activity():
            activity.heartbeat(*details)

    @property
    def heartbeat_details(self) -> tuple[Any, ...]:
        """The details of this attempt's last `heartbeat` call (the automatic heartbeats repeat them)."""
        return self._details[0] if self._details else ()

    def is_cancelled(self) -> bool:
        """Whether the job was cancelled: stop soon, and raise `asyncio.CancelledError`."""
        return activity.in_activity() and activity.is_cancelled()


Handler = Callable[[StageContext], Awaitable[Any]]
"""A stage handler: `async def handler(context: StageContext) -> <JSON value>`."""

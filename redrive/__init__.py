"""redrive: durable jobs with declarative retries and a dead-letter queue you can drain, on Temporal.

The public surface, for teams that declare their own job types in their own packages:

    from redrive import JobType, Stage, Retry, StageContext, PermanentError, RetryableError

    async def charge(context: StageContext) -> dict[str, str]:
        ...  # return a JSON value; raise PermanentError to dead-letter at once, anything else retries

    INVOICE = JobType(
        name="invoice", stages=[Stage(name="charge", handler=charge, retry=Retry(max_retries=5))]
    )

Everything else in the package is redrive's own and may change. (Names load on first use, so
`import redrive.x` stays cheap for the command line.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redrive.breaker_policy import Breaker
    from redrive.context import Handler, StageContext
    from redrive.errors import PermanentError, RetryableError
    from redrive.jobtypes.registry import JobType, Stage
    from redrive.retry_policy import Retry

_HOMES = {
    "Breaker": "redrive.breaker_policy",
    "JobType": "redrive.jobtypes.registry",
    "Stage": "redrive.jobtypes.registry",
    "Retry": "redrive.retry_policy",
    "StageContext": "redrive.context",
    "Handler": "redrive.context",
    "PermanentError": "redrive.errors",
    "RetryableError": "redrive.errors",
}

__all__ = [
    "Breaker",
    "Handler",
    "JobType",
    "PermanentError",
    "Retry",
    "RetryableError",
    "Stage",
    "StageContext",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'redrive' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)

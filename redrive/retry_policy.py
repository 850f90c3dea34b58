"""Retry declarations: data that says how a stage retries, and the one function that turns it into
a Temporal `RetryPolicy`.

The delay before attempt n+1 (n ≥ 1 failed attempts so far) is

    nominal(n) = min(initial_interval × backoff_coefficient^(n-1), maximum_interval)
    delay(n)   = nominal(n) × (1 + jitter × u),  u drawn uniformly from [0, 1)

so the seed default (30 s, ×4, 3 retries, 25 % jitter) waits 30–37.5 s, 120–150 s and 480–600 s.
A retry-after hint from the failing service replaces nominal(n) (capped at maximum_interval).
Temporal's `RetryPolicy` has no jitter field, so the stage activity passes `delay(n)` as
`ApplicationError.next_retry_delay`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.common import RetryPolicy

from redrive.errors import PERMANENT_ERROR_TYPES


@dataclass(frozen=True, kw_only=True)
class Retry:
    """How one stage retries. `max_retries` counts retries after the first attempt."""

    initial_interval: timedelta = timedelta(seconds=30)
    backoff_coefficient: float = 4.0
    max_retries: int = 3
    maximum_interval: timedelta = timedelta(hours=1)
    jitter: float = 0.25
    non_retryable: tuple[str, ...] = field(default=PERMANENT_ERROR_TYPES)

    def __post_init__(self) -> None:
        if self.initial_interval <= timedelta(0):
            raise ValueError("initial_interval must be positive")
        if self.backoff_coefficient < 1:
            raise ValueError("backoff_coefficient must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if self.maximum_interval < self.initial_interval:
            raise ValueError("maximum_interval must be at least initial_interval")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @property
    def max_attempts(self) -> int:
        """Total attempts: the first plus the retries."""
        return self.max_retries + 1


# JobWorkflow's own bookkeeping (they live here because the sandbox re-runs each import statement
# of the workflow's module for every run). Bookkeeping must never be the reason a job is lost:
# retry it until it succeeds, at a modest pace.
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BREAKER_RECHECK = timedelta(minutes=1)
"""A job held by a breaker asks it again this often, in case its release signal never came."""
LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)
"""A local stage's retry whose backoff is longer than this waits on a workflow timer (a history
event) instead of in the worker's memory."""
# Alerts are worth a few tries (about 2.5 minutes in all), not a job held open forever.
ALERT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=2, maximum_attempts=5)
ALERT_TIMEOUT = timedelta(minutes=1)


def to_retry_policy(declaration: Retry) -> RetryPolicy:
    """The Temporal policy for `declaration` (jitter is applied by the activity, see module doc)."""
    return RetryPolicy(
        initial_interval=declaration.initial_interval,
        backoff_coefficient=declaration.backoff_coefficient,
        maximum_interval=declaration.maximum_interval,
        maximum_attempts=declaration.max_attempts,
        non_retryable_error_types=list(declaration.non_retryable),
    )


def nominal_delay(declaration: Retry, failed_attempts: int) -> timedelta:
    """The backoff after `failed_attempts` failures, before jitter."""
    seconds = declaration.initial_interval.total_seconds() * declaration.backoff_coefficient ** (
        failed_attempts - 1
    )
    return min(timedelta(seconds=seconds), declaration.maximum_interval)


def next_delay(
    declaration: Retry,
    failed_attempts: int,
    unit_random: float,
    hint: timedelta | None = None,
) -> timedelta:
    """The jittered delay before the next attempt; `unit_random` is drawn from [0, 1)."""
    base = min(hint, declaration.maximum_interval) if hint is not None else None
    if base is None:
        base = nominal_delay(declaration, failed_attempts)
    return base * (1 + declaration.jitter * unit_random)

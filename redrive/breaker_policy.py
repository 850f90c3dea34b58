"""Circuit-breaker declarations: data that says when a stage's breaker opens, how long it stays
open, and how fast the jobs it held resume.

A breaker watches the attempts of one stage of one job type across all jobs (optionally per
downstream, named by a payload field). Over the last `window`, once at least `min_failures` attempts
failed and the failed share reaches `failure_rate`, it opens: attempts waiting for their retry are
paused in Temporal, and attempts that start while it is open pause before calling the handler.
After `cool_down` one job's attempt goes through as a probe; its success closes the breaker and the
held jobs resume at `resume_rate` per second, its failure opens it again for twice as long (up to
`max_cool_down`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

MAX_KEY = 200


@dataclass(frozen=True, kw_only=True)
class Breaker:
    """When one stage's breaker opens and closes."""

    window: timedelta = timedelta(minutes=1)
    min_failures: int = 5
    failure_rate: float = 0.5
    cool_down: timedelta = timedelta(seconds=30)
    max_cool_down: timedelta = timedelta(minutes=10)
    resume_rate: float = 10.0
    """Held jobs released per second once the breaker closes, so a recovering downstream is not
    stampeded by every job at once."""
    per: str | None = None
    """A payload field that names the downstream (a URL counts by its host): one breaker per value,
    so one failing host does not hold the jobs bound for the others."""

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("breaker window must be positive")
        if self.min_failures < 1:
            raise ValueError("breaker min_failures must be at least 1")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("breaker failure_rate must be above 0 and at most 1")
        if self.cool_down <= timedelta(0):
            raise ValueError("breaker cool_down must be positive")
        if self.max_cool_down < self.cool_down:
            raise ValueError("breaker max_cool_down must be at least cool_down")
        if self.resume_rate <= 0:
            raise ValueError("breaker resume_rate must be positive")

    def crossed(self, attempts: int, failures: int) -> bool:
        """Whether `failures` of `attempts` in the window open the breaker."""
        return failures >= self.min_failures and failures >= self.failure_rate * attempts

    def next_cool_down(self, cool_down: timedelta) -> timedelta:
        """The cool-down after a failed probe: twice the last, at most `max_cool_down`."""
        return min(cool_down * 2, self.max_cool_down)


def downstream(breaker: Breaker, payload: Mapping[str, Any]) -> str:
    """The key of the breaker a job with `payload` goes through: '' unless `per` names a field, the
    field's host when it is a URL, else its text."""
    if breaker.per is None:
        return ""
    value = payload.get(breaker.per)
    if value is None:
        return ""
    text = str(value)
    try:
        host = urlsplit(text).hostname if "://" in text else None
    except ValueError:
        host = None
    return (host or text)[:MAX_KEY]


@dataclass(frozen=True)
class BreakerRef:
    """Which breaker: a job type's stage, and the downstream key ('' for the stage as a whole)."""

    job_type: str
    stage: str
    key: str = ""

    def workflow_id(self, task_queue: str) -> str:
        """The id of the workflow that acts for this breaker: one per breaker (and deployment, named
        by its task queue, as two deployments may share a namespace), so one actor."""
        return f"breaker/{task_queue}/{self.job_type}/{self.stage}" + (f"/{self.key}" if self.key else "")

    def __str__(self) -> str:
        return f"{self.job_type}/{self.stage}" + (f" ({self.key})" if self.key else "")

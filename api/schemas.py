"""Request and response bodies, separate from the table models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from redrive.status import ErrorReason

MAX_PAGE = 200


class JobCreate(BaseModel):
    """A job to run."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, examples=["demo"])
    payload: dict[str, Any] = Field(default_factory=dict, examples=[{"sleep_ms": 100}])
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)


class StagePublic(BaseModel):
    """One stage's progress."""

    name: str
    status: str
    executions: int
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None


class ActionPublic(BaseModel):
    """Something a person did to the job: `retry`, `replay`, `cancel` or `review`."""

    action: str
    by: str
    note: str | None
    at: datetime


class JobPublic(BaseModel):
    """A job as the API shows it."""

    id: str
    type: str
    status: str
    stage: str | None
    run_id: str | None
    attempt: int
    max_attempts: int | None
    next_retry_at: datetime | None
    error_reason: str | None
    error_type: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    processing_time_s: float | None
    stages: list[StagePublic] = Field(default_factory=list)
    temporal_url: str
    actions: list[ActionPublic] = Field(default_factory=list)


class JobPage(BaseModel):
    """One page of jobs, newest first, with counts per status for the same filter."""

    items: list[JobPublic]
    next_cursor: str | None
    counts: dict[str, int]


class RetryRequest(BaseModel):
    """Retry a dead job from the stage that failed, or from an earlier one."""

    model_config = ConfigDict(extra="forbid")

    from_stage: str | None = Field(
        default=None, min_length=1, max_length=64, description="a stage up to the failed one (default: it)"
    )
    reason: str | None = Field(default=None, max_length=500, examples=["upstream fixed in INC-42"])
    force: bool = Field(default=False, description="replay past the configured replay limit")


class CancelRequest(BaseModel):
    """Stop a queued, running, retrying or waiting job."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500, examples=["customer withdrew the order"])


class CancelPublic(BaseModel):
    """The cancellation was delivered; the job shows `cancelled` once its stage has stopped."""

    job_id: str
    run_id: str
    status: Literal["cancelling"]


class ReviewRequest(BaseModel):
    """A decision on a job waiting in a review stage."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=1000)


class ReviewPublic(BaseModel):
    """The decision the job accepted."""

    job_id: str
    stage: str
    decision: str
    reviewer: str


class RetryPublic(BaseModel):
    """What a retry did: `reset` reused the history; `resubmitted` started anew from the stored payload."""

    job_id: str
    run_id: str
    from_stage: str
    mode: Literal["reset", "resubmitted"]
    dead_letter_id: uuid.UUID | None
    reason: str | None = None
    retried_by: str


class DeadLetterPublic(BaseModel):
    """A dead-letter entry. `state` is `pending`, `replayed`, or `archived` (pending and older than
    the archive age, whether or not maintenance has run yet)."""

    id: uuid.UUID
    original_job_id: str
    run_id: str
    type: str
    stage: str
    payload: dict[str, Any]
    error_reason: str
    error_type: str
    error_message: str
    attempts: int
    error_history: list[dict[str, Any]]
    dlq_at: datetime
    replayed_at: datetime | None
    state: Literal["pending", "replayed", "archived"]
    fingerprint: str
    replay_of: uuid.UUID | None
    replay_count: int
    replayed_by: str | None
    notified_at: datetime | None


class DeadLetterPage(BaseModel):
    """Dead-letter entries, newest first; `next_cursor` fetches the next page."""

    items: list[DeadLetterPublic]
    next_cursor: str | None = None


class DeadLetterGroupPublic(BaseModel):
    """Dead letters that failed the same way (same fingerprint)."""

    fingerprint: str
    type: str
    stage: str
    error_type: str
    error_reason: str
    count: int
    first_seen: datetime
    last_seen: datetime
    sample_id: uuid.UUID
    sample_message: str


class DeadLetterGroupPage(BaseModel):
    """Groups of pending dead letters, largest first."""

    items: list[DeadLetterGroupPublic]


class ReplayRequest(BaseModel):
    """Replay one dead letter."""

    model_config = ConfigDict(extra="forbid")

    from_stage: str | None = Field(default=None, min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    force: bool = Field(default=False, description="replay past the configured replay limit")


class ReplayFilter(BaseModel):
    """Which pending dead letters a bulk replay takes (always the caller's own)."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, max_length=64)
    reason: ErrorReason | None = None
    stage: str | None = Field(default=None, max_length=64)
    fingerprint: str | None = Field(default=None, max_length=64)
    dlq_before: datetime | None = Field(default=None, description="died before this time")
    dlq_after: datetime | None = Field(default=None, description="died at or after this time")


class BulkReplayRequest(BaseModel):
    """Replay every pending dead letter matching `filter`, up to `max`, at most `rate` per second."""

    model_config = ConfigDict(extra="forbid")

    filter: ReplayFilter = Field(default_factory=ReplayFilter)
    dry_run: bool = Field(default=False, description="count and sample only; change nothing")
    max: int = Field(default=100, ge=1, le=10_000)
    rate: float | None = Field(default=None, gt=0, le=1000, description="replays per second")
    reason: str | None = Field(default=None, max_length=500)
    force: bool = False


class ReplayItem(BaseModel):
    """What a bulk replay did with one entry."""

    dead_letter_id: uuid.UUID
    job_id: str
    outcome: Literal["reset", "resubmitted", "skipped", "failed"]
    run_id: str | None = None
    detail: str | None = None


class BulkReplayPublic(BaseModel):
    """A bulk replay's outcome: how many matched, a sample, and one result per entry taken."""

    dry_run: bool
    matched: int
    sample: list[DeadLetterPublic]
    results: list[ReplayItem]
    replayed: int
    skipped: int
    failed: int

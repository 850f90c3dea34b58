"""Request and response bodies, separate from the table models."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from redrive.status import ErrorReason

MAX_PAGE = 200


def _iso_only(value: object) -> object:
    # Pydantic would read 1700000000 or "0.5" as a Unix time; an API caller meant something else.
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"[\d.eE+-]*", value)):
        raise ValueError("expected an ISO 8601 time such as 2026-11-24T09:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A point in time written out in ISO 8601."""


class JobCreate(BaseModel):
    """A job to run."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

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


class DeadLetterLink(BaseModel):
    """One trip of the job through the dead-letter queue."""

    id: uuid.UUID
    run_id: str
    stage: str
    error_reason: str
    dlq_at: datetime
    replayed_at: datetime | None
    replay_of: uuid.UUID | None
    replay_count: int


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
    dead_letters: list[DeadLetterLink] = Field(
        default_factory=list, description="the retry chain, oldest first"
    )


class JobPage(BaseModel):
    """One page of jobs, newest first, with counts per status for the same filter."""

    items: list[JobPublic]
    next_cursor: str | None
    counts: dict[str, int]


class RetryRequest(BaseModel):
    """Retry a dead job from the stage that failed, or from an earlier one."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    from_stage: str | None = Field(
        default=None, min_length=1, max_length=64, description="a stage up to the failed one (default: it)"
    )
    reason: str | None = Field(default=None, max_length=500, examples=["upstream fixed in INC-42"])
    force: bool = Field(default=False, description="replay past the configured replay limit")


class CancelRequest(BaseModel):
    """Stop a queued, running, retrying or waiting job."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    reason: str | None = Field(default=None, max_length=500, examples=["customer withdrew the order"])


class CancelPublic(BaseModel):
    """The cancellation was delivered; the job shows `cancelled` once its stage has stopped."""

    job_id: str
    run_id: str
    status: Literal["cancelling"]


class ReviewRequest(BaseModel):
    """A decision on a job waiting in a review stage."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

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

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    from_stage: str | None = Field(default=None, min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    force: bool = Field(default=False, description="replay past the configured replay limit")


class ReplayFilter(BaseModel):
    """Which pending dead letters a bulk replay takes (always the caller's own)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    type: str | None = Field(default=None, max_length=64)
    reason: ErrorReason | None = None
    stage: str | None = Field(default=None, max_length=64)
    fingerprint: str | None = Field(default=None, max_length=64)
    dlq_before: IsoTime | None = Field(default=None, description="died before this time")
    dlq_after: IsoTime | None = Field(default=None, description="died at or after this time")


class BulkReplayRequest(BaseModel):
    """Replay every pending dead letter matching `filter`, up to `max`, at most `rate` per second."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

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


class ProblemDocument(BaseModel):
    """An error (RFC 9457): what went wrong, and the field to fix when one is to blame."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[dict[str, str]] | None = Field(default=None, description="every `{field, message}`")


def _problem(description: str) -> dict[str, Any]:
    schema = ProblemDocument.model_json_schema()
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("The body is not valid JSON."),
    401: _problem("No API key, or one that is not valid or was revoked."),
    403: _problem("The API key lacks the scope this call needs."),
    404: _problem("No such object for this API key's tenant."),
    409: _problem("The object is not in a state that allows this; the detail says why."),
    413: _problem("The request body is over the configured limit."),
    422: _problem("A field is invalid; `field` names it and `errors` lists all."),
    503: _problem("Temporal or the database cannot be reached; retry after `Retry-After` seconds."),
}
"""Every error a `/v1` route can answer with, documented once for all of them."""

"""Request and response bodies, separate from the table models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class JobPage(BaseModel):
    """One page of jobs, newest first, with counts per status for the same filter."""

    items: list[JobPublic]
    next_cursor: str | None
    counts: dict[str, int]


class RetryRequest(BaseModel):
    """Retry a dead job from the stage that failed."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class RetryPublic(BaseModel):
    """What a retry did: `reset` reused the history; `resubmitted` started anew from the stored payload."""

    job_id: str
    run_id: str
    from_stage: str
    mode: Literal["reset", "resubmitted"]
    dead_letter_id: uuid.UUID | None


class DeadLetterPublic(BaseModel):
    """A dead-letter entry."""

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


class DeadLetterPage(BaseModel):
    """Dead-letter entries, newest first."""

    items: list[DeadLetterPublic]

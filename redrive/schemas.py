"""Request and response bodies of the REST API, shared by the API (`api/`) and its Python client
(`redrive.client`); separate from the table models."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

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
    """A job to run. `payload` is the job type's own: the built-ins' are `demo` (`sleep_ms`, `fail`),
    `webhook` (`url`, `method`, `headers`, `body`) and `demo_review` (as `demo`); see the examples."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    type: str = Field(min_length=1, max_length=64, examples=["demo"])
    payload: dict[str, Any] = Field(default_factory=dict, examples=[{"sleep_ms": 100}])
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)


SUBMIT_EXAMPLES: dict[str, dict[str, Any]] = {
    "demo": {
        "summary": "demo: three stages that sleep 100 ms each",
        "value": {"type": "demo", "payload": {"sleep_ms": 100}},
    },
    "demo_failing": {
        "summary": "demo: stage process fails twice (retryable), then succeeds",
        "value": {
            "type": "demo",
            "payload": {
                "sleep_ms": 100,
                "fail": {"stage": "process", "error": "ServiceUnavailable", "times": 2},
            },
        },
    },
    "webhook": {
        "summary": "webhook: one HTTP request; 2xx succeeds, 5xx/429/timeouts retry, other 4xx dead-letter",
        "value": {
            "type": "webhook",
            "payload": {
                "url": "https://example.com/hooks/orders",
                "method": "POST",
                "headers": {"X-Source": "redrive"},
                "body": {"order": 42},
            },
            "idempotency_key": "order-42",
        },
    },
    "demo_review": {
        "summary": "demo_review: prepare, then wait for POST /v1/jobs/{id}/review, then finish",
        "value": {"type": "demo_review", "payload": {"sleep_ms": 100}},
    },
}
"""One request per built-in job type, shown in the OpenAPI document (and so at /docs)."""


class StagePublic(BaseModel):
    """One stage's progress."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "process",
                    "status": "complete",
                    "executions": 2,
                    "attempt": 1,
                    "started_at": "2026-11-24T09:00:01Z",
                    "finished_at": "2026-11-24T09:00:02Z",
                    "duration_s": 1.0,
                }
            ]
        }
    )

    name: str
    status: str
    executions: int
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None


class ActionPublic(BaseModel):
    """Something a person did to the job: `retry`, `replay`, `cancel` or `review`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "action": "retry",
                    "by": "a/rdk-1b8e0992eadb",
                    "note": "from stage deliver: upstream fixed in INC-42",
                    "at": "2026-11-24T09:20:00Z",
                }
            ]
        }
    )

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


JOB_EXAMPLE: dict[str, Any] = {
    "id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
    "type": "webhook",
    "status": "retrying",
    "label": "retrying",
    "stage": "deliver",
    "run_id": "01a20cd4-3866-7336-8b77-6b6560ce5b63",
    "attempt": 2,
    "max_attempts": 4,
    "next_retry_at": "2026-11-24T09:02:31Z",
    "error_reason": None,
    "error_type": "ServiceUnavailable",
    "error_message": "POST https://example.com/hook answered 503: busy",
    "created_at": "2026-11-24T09:00:00Z",
    "updated_at": "2026-11-24T09:00:31Z",
    "finished_at": None,
    "processing_time_s": None,
    "stages": [],
    "temporal_url": "http://localhost:8233/namespaces/default/workflows/job-5f3a…/01a20cd4…/history",
    "actions": [],
    "dead_letters": [],
}


class BreakerHold(BaseModel):
    """The circuit breaker holding a job at one of its stages, and how."""

    job_type: str
    stage: str
    key: str = Field(description="the downstream the breaker is kept for ('' for the whole stage)")
    how: Literal["paused", "waiting"] = Field(
        description="`paused`: the stage's activity is paused in Temporal; `waiting`: its last attempt "
        "failed while the breaker was open and the job waits to start the stage again"
    )
    since: datetime
    breaker_url: str


class JobPublic(BaseModel):
    """A job as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    type: str
    status: str
    label: str = Field(
        description="the status in the job type's own words (the status itself if it has none)"
    )
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
    held_by_breaker: BreakerHold | None = Field(
        default=None, description="set while an open circuit breaker holds the job (it spends no retries)"
    )


class JobPage(BaseModel):
    """One page of jobs, newest first, with counts per status for the same filter."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [JOB_EXAMPLE],
                    "next_cursor": "MjAyNi0xMS0yNFQwOTowMDowMFp8am9iLTVmM2E5YzBl",
                    "counts": {"running": 3, "retrying": 1, "complete": 120, "dead_letter": 2},
                }
            ]
        }
    )

    items: list[JobPublic]
    next_cursor: str | None
    counts: dict[str, int] | None = Field(
        default=None, description="jobs per status for the same filter; on the first page only"
    )


class RetryRequest(BaseModel):
    """Retry a dead job from the stage that failed, or from an earlier one."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    from_stage: str | None = Field(
        default=None, min_length=1, max_length=64, description="a stage up to the failed one (default: it)"
    )
    reason: str | None = Field(default=None, max_length=500, examples=["upstream fixed in INC-42"])
    force: bool = Field(default=False, description="replay past the configured replay limit")
    payload_patch: dict[str, Any] | None = Field(
        default=None,
        description="a JSON Merge Patch (RFC 7396) of the payload: the job continues from the stage in a "
        "new run with the patched payload, the stages before it not run again (mode `continued`)",
        examples=[{"fail": None, "sleep_ms": 50}],
    )


class CancelRequest(BaseModel):
    """Stop a queued, running, retrying or waiting job."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    reason: str | None = Field(default=None, max_length=500, examples=["customer withdrew the order"])


class CancelPublic(BaseModel):
    """The cancellation was delivered; the job shows `cancelled` once its stage has stopped."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
                    "run_id": "01a20cd4-3866-7336-8b77-6b6560ce5b63",
                    "status": "cancelling",
                }
            ]
        }
    )

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
                    "stage": "approval",
                    "decision": "approve",
                    "reviewer": "a/1b8e0992eadb",
                }
            ]
        }
    )

    job_id: str
    stage: str
    decision: str
    reviewer: str


class RetryPublic(BaseModel):
    """What a retry did: `reset` reused the history; `resubmitted` started anew from the stored payload;
    `continued` started a run with the patched payload at the stage, earlier outputs carried over."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
                    "run_id": "01a20cd5-0000-7000-8000-000000000001",
                    "from_stage": "deliver",
                    "mode": "reset",
                    "dead_letter_id": "0b8e5a3c-2f1d-4c6b-9a7e-5d4c3b2a1f0e",
                    "reason": "upstream fixed in INC-42",
                    "retried_by": "a/rdk-1b8e0992eadb",
                }
            ]
        }
    )

    job_id: str
    run_id: str
    from_stage: str
    mode: Literal["reset", "resubmitted", "continued"]
    dead_letter_id: uuid.UUID | None
    reason: str | None = None
    retried_by: str


class DeadLetterPublic(BaseModel):
    """A dead-letter entry. `state` is `pending`, `replayed`, or `archived` (pending and older than
    the archive age, whether or not maintenance has run yet)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8e5a3c-2f1d-4c6b-9a7e-5d4c3b2a1f0e",
                    "original_job_id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
                    "run_id": "01a20cd4-3866-7336-8b77-6b6560ce5b63",
                    "type": "webhook",
                    "stage": "deliver",
                    "payload": {"url": "https://example.com/hook"},
                    "error_reason": "MaxRetries",
                    "error_type": "ServiceUnavailable",
                    "error_message": "POST https://example.com/hook answered 503: busy",
                    "attempts": 4,
                    "error_history": [
                        {
                            "attempt": 1,
                            "error_type": "ServiceUnavailable",
                            "message": "…",
                            "timestamp": "2026-11-24T09:00:01Z",
                        }
                    ],
                    "dlq_at": "2026-11-24T09:10:31Z",
                    "replayed_at": None,
                    "state": "pending",
                    "fingerprint": "4f1c2b9a7d3e6f80",
                    "replay_of": None,
                    "replay_count": 0,
                    "replayed_by": None,
                    "notified_at": "2026-11-24T09:10:32Z",
                }
            ]
        }
    )

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fingerprint": "4f1c2b9a7d3e6f80",
                    "type": "webhook",
                    "stage": "deliver",
                    "error_type": "ServiceUnavailable",
                    "error_reason": "MaxRetries",
                    "count": 41,
                    "first_seen": "2026-11-24T08:02:11Z",
                    "last_seen": "2026-11-24T09:10:31Z",
                    "sample_id": "0b8e5a3c-2f1d-4c6b-9a7e-5d4c3b2a1f0e",
                    "sample_message": "POST https://example.com/hook answered 503: busy",
                }
            ]
        }
    )

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
    payload_patch: dict[str, Any] | None = Field(
        default=None, description="a JSON Merge Patch (RFC 7396) of the payload, as for a job's retry"
    )


class ReplayFilter(BaseModel):
    """Which pending dead letters a bulk replay takes (always the caller's own)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false; 0.5 is not a time

    type: str | None = Field(default=None, max_length=64)
    reason: ErrorReason | None = Field(default=None, strict=False)  # strict takes no JSON string
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
    outcome: Literal["reset", "resubmitted", "continued", "skipped", "failed"]
    run_id: str | None = None
    detail: str | None = None


class BulkReplayPublic(BaseModel):
    """A bulk replay's outcome: how many matched, a sample, and one result per entry taken."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dry_run": False,
                    "matched": 41,
                    "sample": [],
                    "replayed": 40,
                    "skipped": 1,
                    "failed": 0,
                    "results": [
                        {
                            "dead_letter_id": "0b8e5a3c-2f1d-4c6b-9a7e-5d4c3b2a1f0e",
                            "job_id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
                            "outcome": "reset",
                            "run_id": "01a20cd5-0000-7000-8000-000000000001",
                            "detail": None,
                        }
                    ],
                }
            ]
        }
    )

    dry_run: bool
    matched: int
    sample: list[DeadLetterPublic]
    results: list[ReplayItem]
    replayed: int
    skipped: int
    failed: int
    campaign_id: str | None = Field(default=None, description="the campaign that did it")


class CanaryRequest(BaseModel):
    """Replay `count` entries first (or `percent` of those the campaign takes), wait until each has
    completed or died again, and stop the campaign when more than `max_died_again_percent` died."""

    model_config = ConfigDict(extra="forbid", strict=True)

    count: int | None = Field(default=None, ge=1, le=10_000)
    percent: float | None = Field(default=None, gt=0, le=100)
    max_died_again_percent: float = Field(default=0, ge=0, le=100, strict=False)
    settle_seconds: float = Field(
        default=600, gt=0, le=86_400, strict=False, description="stop if the canary has not settled by then"
    )

    @model_validator(mode="after")
    def _one_size(self) -> CanaryRequest:
        if (self.count is None) == (self.percent is None):
            raise ValueError("give the canary's size as count or as percent (one of them)")
        return self


class CampaignRequest(BulkReplayRequest):
    """A replay campaign: `POST /v1/dead-letters/replay`'s order, run by a workflow, with an
    optional canary."""

    canary: CanaryRequest | None = None


class CampaignProblem(BaseModel):
    """An entry the campaign did not replay, and why."""

    dead_letter_id: str
    job_id: str
    outcome: Literal["skipped", "failed"]
    detail: str | None = None


CAMPAIGN_EXAMPLE: dict[str, Any] = {
    "id": "replay-6f1c0d9e2b7a4c83a1e5d4f3b2a19087",
    "state": "running",
    "workflow_status": "RUNNING",
    "created_at": "2026-12-02T10:15:00Z",
    "created_by": "a/rdk-1b8e0992eadb",
    "filter": {"type": "webhook", "fingerprint": "d6952d66f812ae19"},
    "max": 500,
    "rate": 20,
    "reason": "provider fixed in INC-42",
    "force": False,
    "canary": {"count": 10, "percent": None, "max_died_again_percent": 0, "settle_seconds": 600},
    "matched": 312,
    "taking": 312,
    "taken": 140,
    "replayed": 138,
    "resubmitted": 0,
    "skipped": 2,
    "failed": 0,
    "completed": 121,
    "died_again": 0,
    "still_running": 17,
    "stop_reason": None,
    "problems": [
        {
            "dead_letter_id": "0b8e5a3c-2f1d-4c6b-9a7e-5d4c3b2a1f0e",
            "job_id": "job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7",
            "outcome": "skipped",
            "detail": "job job-5f3a9c0e8b7d4e21a0b1c2d3e4f5a6b7 has run again since this entry was recorded",
        }
    ],
}


class CampaignPublic(BaseModel):
    """A replay campaign and where it stands. `state`: running, paused, canary (waiting for its
    canary jobs), finished, cancelled or stopped (by its canary: `stop_reason` says why)."""

    model_config = ConfigDict(json_schema_extra={"examples": [CAMPAIGN_EXAMPLE]})

    id: str
    state: str
    workflow_status: str = Field(description="Temporal's: RUNNING, COMPLETED, FAILED, TERMINATED, …")
    created_at: datetime = Field(description="entries that died after this are not taken")
    created_by: str
    filter: ReplayFilter
    max: int
    rate: float
    reason: str | None
    force: bool
    canary: CanaryRequest | None
    matched: int = Field(description="pending entries matching the filter when it started")
    taking: int = Field(description="how many it takes: matched or max, whichever is smaller")
    taken: int
    replayed: int = Field(description="reset, or continued")
    resubmitted: int = Field(description="started anew from the payload (history gone)")
    skipped: int
    failed: int
    completed: int = Field(description="of the jobs it replayed, how many have completed since")
    died_again: int = Field(description="of the jobs it replayed, how many are back in the queue")
    still_running: int
    stop_reason: str | None
    problems: list[CampaignProblem] = Field(description="the latest entries skipped or failed (100 at most)")


class CampaignSummary(BaseModel):
    """A campaign in a listing."""

    id: str
    workflow_status: str
    started_at: datetime | None


class CampaignList(BaseModel):
    """The caller's latest campaigns, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "replay-6f1c0d9e2b7a4c83a1e5d4f3b2a19087",
                            "workflow_status": "RUNNING",
                            "started_at": "2026-12-02T10:15:00Z",
                        }
                    ]
                }
            ]
        }
    )

    items: list[CampaignSummary]


class CampaignPreview(BaseModel):
    """A dry run: how many pending entries match, and a sample; nothing was started."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"dry_run": True, "matched": 312, "sample": []}]}
    )

    dry_run: bool = True
    matched: int
    sample: list[DeadLetterPublic]


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


BREAKER_EXAMPLE: dict[str, Any] = {
    "job_type": "webhook",
    "stage": "deliver",
    "key": "api.example.com",
    "state": "open",
    "since": "2026-12-03T09:00:00Z",
    "reason": "12 of 14 attempts failed within 0:01:00; last: HTTPStatusError: 503 Service Unavailable",
    "by": "breaker",
    "manual": False,
    "cool_down_s": 30.0,
    "probe_job_id": None,
    "attempts": 14,
    "failures": 12,
    "waiting": 40,
    "declaration": {
        "window_s": 60.0,
        "min_failures": 5,
        "failure_rate": 0.5,
        "cool_down_s": 30.0,
        "max_cool_down_s": 600.0,
        "resume_rate": 10.0,
        "per": "url",
    },
}


class BreakerDeclaration(BaseModel):
    """What opens the breaker and how it recovers, as the stage declares it."""

    window_s: float
    min_failures: int
    failure_rate: float
    cool_down_s: float
    max_cool_down_s: float
    resume_rate: float = Field(description="held jobs released per second once it closes")
    per: str | None = Field(description="the payload field naming the downstream, if kept per downstream")


class BreakerPublic(BaseModel):
    """One circuit breaker: its state, why, its window's figures and the jobs it holds."""

    model_config = ConfigDict(json_schema_extra={"examples": [BREAKER_EXAMPLE]})

    job_type: str
    stage: str
    key: str = Field(description="the downstream ('' for the whole stage)")
    state: Literal["closed", "open", "half_open"]
    since: datetime | None = Field(description="when it entered this state (null: never opened)")
    reason: str
    by: str | None = Field(description="`breaker` when it moved by itself, else who moved it")
    manual: bool = Field(description="opened by hand: stays open, without probes, until closed by hand")
    cool_down_s: float
    probe_job_id: str | None
    attempts: int = Field(description="attempts of the stage in the window (since it last closed)")
    failures: int = Field(description="of those, failed in a way worth retrying")
    waiting: int = Field(description="jobs the breaker holds")
    declaration: BreakerDeclaration


class BreakerList(BaseModel):
    """Every declared breaker (one per downstream seen, for one kept per downstream)."""

    items: list[BreakerPublic]


class BreakerRequest(BaseModel):
    """Why an operator opens or closes the breaker (recorded, and sent in the alert)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(min_length=1, max_length=500, examples=["provider maintenance, INC-77"])

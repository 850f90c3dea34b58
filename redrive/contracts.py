"""What travels between the API, the workflow and the activities.

One frozen dataclass in, one out. These are recorded in Temporal histories: add fields only at the
end, with defaults, so that old histories still decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redrive.jobtypes.registry import Stage
from redrive.status import ErrorReason, JobStatus

MAINTENANCE_WORKFLOW = "MaintenanceWorkflow"
"""Run by the maintenance schedule, which the worker creates by this name."""
SUPERSEDED_RUN_WORKFLOW = "SupersededRunWorkflow"
"""Deletes a dead run that a retry's reset left behind; started by the retry operation by name."""
RECORD_DEAD_LETTER = "record_dead_letter"
NOTIFY_DEAD_LETTER = "notify_dead_letter"
RECORD_STATUS = "record_status"
DELETE_SUPERSEDED_RUN = "delete_superseded_run"
ARCHIVE_DEAD_LETTERS = "archive_dead_letters"
PURGE_REPLAYED = "purge_replayed"
RECONCILE_CLOSED_RUNS = "reconcile_closed_runs"
REPAIR_PROJECTION = "repair_projection"
SEND_DIGESTS = "send_digests"
"""The activities workflows call, by name: workflows import no activity module (the sandbox runs
each import statement of a workflow's module again for every run, and the layers stay apart)."""


@dataclass(frozen=True, kw_only=True)
class JobInput:
    """Starts a `JobWorkflow`: the job and its stage plan, resolved when it was submitted."""

    job_id: str
    tenant_id: str
    job_type: str
    payload: dict[str, Any]
    stages: tuple[Stage, ...]
    start_at: int = 0
    """The stage to begin with: a retry with an edited payload continues a dead job from its failed
    stage in a new run, the stages before it not run again."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The outputs of the stages before `start_at`, carried over from the run that produced them."""


@dataclass(frozen=True, kw_only=True)
class JobResult:
    """A completed job: each stage's output by stage name."""

    job_id: str
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class StageInput:
    """Runs one stage: the job, the stage's declaration and the outputs of the stages before it."""

    job_id: str
    tenant_id: str
    job_type: str
    payload: dict[str, Any]
    stage: Stage
    position: int
    outputs: dict[str, Any] = field(default_factory=dict)
    last: bool = False
    """The job's final stage: on success its activity projects `complete` too."""


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """One stage's output (any JSON value)."""

    output: Any = None
    projected_complete: bool = False
    """The activity stored the job's `complete` status, so the workflow need not."""


@dataclass(frozen=True, kw_only=True)
class StatusInput:
    """A status change the workflow projects into the `jobs` table."""

    job_id: str
    run_id: str
    status: JobStatus
    stage: str | None = None
    job_type: str = ""


@dataclass(frozen=True, kw_only=True)
class DeadLetterInput:
    """Everything `record_dead_letter` stores about a job that ran out of retries or failed for good."""

    job_id: str
    run_id: str
    tenant_id: str
    job_type: str
    stage: str
    payload: dict[str, Any]
    error_reason: ErrorReason
    error_type: str
    error_message: str
    attempts: int


@dataclass(frozen=True, kw_only=True)
class DeadLetterResult:
    """The stored dead-letter entry's id."""

    dead_letter_id: str
    dlq_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class NotifyInput:
    """The dead letter to announce (its id only: the content stays in the database)."""

    dead_letter_id: str


@dataclass(frozen=True, kw_only=True)
class NotifyResult:
    """What happened: `sent`, `counted` into a later digest, `already` sent, or `off`."""

    outcome: str


@dataclass(frozen=True, kw_only=True)
class MaintenanceInput:
    """One maintenance pass: the ages that decide what is archived and purged, and how far back to
    look for runs that closed without reaching the dead-letter queue."""

    task_queue: str
    archive_after: timedelta
    purge_replayed_after: timedelta
    reconcile_lookback: timedelta


@dataclass(frozen=True, kw_only=True)
class MaintenanceResult:
    """What one pass did."""

    archived: int = 0
    purged: int = 0
    reconciled: int = 0
    repaired: int = 0
    digests: int = 0


@dataclass(frozen=True, kw_only=True)
class ReviewInput:
    """A person's decision on a job waiting in a review stage."""

    decision: str
    """`approve` or `reject`."""
    reviewer: str
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReviewResult:
    """The decision as the job recorded it, and the stage it decided."""

    stage: str
    decision: str


@dataclass(frozen=True, kw_only=True)
class SupersededRun:
    """A job's dead run that a retry replaced with a new one."""

    job_id: str
    run_id: str

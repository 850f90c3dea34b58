"""The tables: `jobs` (the status projection the REST API reads), `job_stages`, `stage_failures`
(one row per failed attempt, the source of `error_history`) and `dead_letters`."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from redrive.status import JobStatus
from redrive.store.types import JSONDocument, UTCDateTime, utcnow

RETRYING_ONLY = sa.text(f"status = '{JobStatus.RETRYING.value}'")
"""The predicate of the partial index `ix_jobs_retrying`, which a query must state as it is (a
literal, not a bound parameter: PostgreSQL's generic plan for a prepared statement, and asyncpg
prepares them all, cannot match a parameter to it)."""


class Job(SQLModel, table=True):
    """One job; `id` is its Temporal workflow id and `run_id` its current run."""

    __tablename__ = "jobs"
    __table_args__ = (
        sa.Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        sa.Index("ix_jobs_tenant_status_created", "tenant_id", "status", "created_at", "id"),
        sa.Index("ix_jobs_tenant_status_finished", "tenant_id", "status", "finished_at"),
        # The jobs an opening breaker pauses, across tenants (`store.breakers.retrying_at`); partial,
        # so only the few rows in `retrying` are in it and other status changes never touch it.
        sa.Index(
            "ix_jobs_retrying",
            "type",
            "stage",
            sqlite_where=RETRYING_ONLY,
            postgresql_where=RETRYING_ONLY,
        ),
    )

    id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(max_length=64)
    type: str = Field(max_length=64)
    status: str = Field(max_length=32)
    stage: str | None = Field(default=None, max_length=64)
    run_id: str | None = Field(default=None, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    idempotency_key: str | None = Field(default=None, max_length=255)
    attempt: int = 0
    max_attempts: int | None = None
    next_retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_reason: str | None = Field(default=None, max_length=32)
    error_type: str | None = Field(default=None, max_length=128)
    error_message: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


JOBS: sa.Table = Job.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
"""`jobs` as a table, for statements built without the ORM (see `redrive.store.projection`)."""


class JobCount(SQLModel, table=True):
    """How many jobs of a tenant and type are in a status, over `shard`s: kept by triggers on `jobs`
    (`redrive.store.counts`), read by listings instead of counting the jobs."""

    __tablename__ = "job_counts"

    tenant_id: str = Field(primary_key=True, max_length=64)
    type: str = Field(primary_key=True, max_length=64)
    status: str = Field(primary_key=True, max_length=32)
    shard: int = Field(primary_key=True)
    n: int = Field(sa_type=sa.BigInteger)


JOB_COUNTS: sa.Table = JobCount.__table__  # type: ignore[attr-defined]


class JobStage(SQLModel, table=True):
    """Per-stage progress of a job: how often it was started, its last attempt and timings."""

    __tablename__ = "job_stages"

    job_id: str = Field(primary_key=True, max_length=64)
    stage: str = Field(primary_key=True, max_length=64)
    position: int
    status: str = Field(max_length=32)
    executions: int = 0
    attempt: int = 0
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


JOB_STAGES: sa.Table = JobStage.__table__  # type: ignore[attr-defined]


class StageFailure(SQLModel, table=True):
    """One failed attempt of a stage in one run (Temporal itself keeps only the last failure)."""

    __tablename__ = "stage_failures"

    job_id: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(primary_key=True, max_length=64)
    stage: str = Field(primary_key=True, max_length=64)
    attempt: int = Field(primary_key=True)
    error_type: str = Field(max_length=128)
    message: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    failed_at: datetime = Field(sa_type=UTCDateTime)
    next_retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


STAGE_FAILURES: sa.Table = StageFailure.__table__  # type: ignore[attr-defined]


class DeadLetter(SQLModel, table=True):
    """A job that ran out of retries or failed permanently, with everything needed to replay it."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        sa.UniqueConstraint("original_job_id", "run_id", name="uq_dead_letters_job_run"),
        sa.Index(
            "ix_dead_letters_pending_type",
            "app_id",
            "type",
            "dlq_at",
            postgresql_where=sa.text("replayed_at IS NULL"),
            sqlite_where=sa.text("replayed_at IS NULL"),
        ),
        sa.Index(
            "ix_dead_letters_pending_age",
            "dlq_at",
            postgresql_where=sa.text("replayed_at IS NULL"),
            sqlite_where=sa.text("replayed_at IS NULL"),
        ),
        sa.Index("ix_dead_letters_request_id", "request_id"),
        sa.Index("ix_dead_letters_app_fingerprint", "app_id", "fingerprint", "dlq_at"),
        sa.Index("ix_dead_letters_app_dlq", "app_id", "dlq_at", "id"),  # the list, newest first
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    original_job_id: str = Field(max_length=64, index=True)
    run_id: str = Field(max_length=64)
    app_id: str = Field(max_length=64)
    type: str = Field(max_length=64)
    stage: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDocument)
    error_reason: str = Field(max_length=32)
    error_type: str = Field(max_length=128)
    error_message: str
    attempts: int
    error_history: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    dlq_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    replayed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    request_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=128)
    fingerprint: str = Field(default="", max_length=64)
    replay_of: uuid.UUID | None = None
    """The entry this job had before it was replayed and died again (the replay chain)."""
    replay_count: int = 0
    """How many replays of this job ended back in the queue."""
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reset_point: int | None = None
    """The workflow task a retry from `stage` resets `run_id` to, as the run recorded it (None:
    read from the run's history when retried)."""


class PendingGroup(SQLModel, table=True):
    """How many dead letters of a tenant that failed the same way (fingerprint) are not replayed yet:
    kept by triggers on `dead_letters` (`redrive.store.counts`), read by the groups listing."""

    __tablename__ = "dead_letter_groups"

    app_id: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=64)
    stage: str = Field(max_length=64)
    error_type: str = Field(max_length=128)
    pending: int = Field(sa_type=sa.BigInteger)


PENDING_GROUPS: sa.Table = PendingGroup.__table__  # type: ignore[attr-defined]


class AlertWindow(SQLModel, table=True):
    """One e-mail per error fingerprint per window; later dead letters are counted for a digest."""

    __tablename__ = "alert_windows"

    fingerprint: str = Field(primary_key=True, max_length=64)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    suppressed: int = 0
    sample_job_id: str | None = Field(default=None, max_length=64)


class JobAction(SQLModel, table=True):
    """What a person did to a job (retry, replay, cancel, review), who did it, and why."""

    __tablename__ = "job_actions"
    __table_args__ = (sa.Index("ix_job_actions_job", "job_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=64)
    action: str = Field(max_length=32)
    actor: str = Field(max_length=128)
    note: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored; `id` is the public part that names it in logs."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)
    tenant_id: str = Field(max_length=64)
    name: str = Field(max_length=128)
    scopes: str = Field(max_length=128)
    """Comma-separated: submit, read, operate, admin."""
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MaintenanceMark(SQLModel, table=True):
    """How far a maintenance step has got (for instance: the projection repair has compared every run
    that closed before `at`), so the next pass starts there however long the passes were failing."""

    __tablename__ = "maintenance_marks"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)


class BreakerState(SQLModel, table=True):
    """One circuit breaker's state (`closed`, `open`, `half_open`), written only by the breaker's
    own workflow; a breaker with no row is closed. Deployment-wide: breakers have no tenant."""

    __tablename__ = "breakers"

    job_type: str = Field(primary_key=True, max_length=64)
    stage: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=200)
    state: str = Field(max_length=16)
    since: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(max_length=1000)
    actor: str = Field(max_length=128)
    """`breaker` when it moved by itself, else who opened or closed it by hand."""
    manual: bool = False
    """Opened by hand: stays open, without probes, until closed by hand."""
    cool_down_seconds: float = 0.0
    probe_job_id: str | None = Field(default=None, max_length=64)
    """In `half_open`: the one job whose attempt goes through."""


BREAKERS: sa.Table = BreakerState.__table__  # type: ignore[attr-defined]


class BreakerAttempt(SQLModel, table=True):
    """One attempt of a stage that has a breaker, kept for the breaker's window."""

    __tablename__ = "breaker_attempts"
    __table_args__ = (sa.Index("ix_breaker_attempts_window", "job_type", "stage", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_type: str = Field(max_length=64)
    stage: str = Field(max_length=64)
    key: str = Field(max_length=200)
    job_id: str = Field(max_length=64)
    failed: bool
    at: datetime = Field(sa_type=UTCDateTime)


BREAKER_ATTEMPTS: sa.Table = BreakerAttempt.__table__  # type: ignore[attr-defined]


class BreakerWaiter(SQLModel, table=True):
    """A job held by a breaker: its stage's activity `paused` in Temporal, or its workflow `waiting`
    for a release signal (its last attempt failed while the breaker was open). Released, paced, when
    the breaker closes."""

    __tablename__ = "breaker_waiters"
    __table_args__ = (sa.Index("ix_breaker_waiters_breaker", "job_type", "stage", "key", "since"),)

    job_id: str = Field(primary_key=True, max_length=64)
    job_type: str = Field(max_length=64)
    stage: str = Field(max_length=64)
    key: str = Field(max_length=200)
    how: str = Field(max_length=16)
    since: datetime = Field(sa_type=UTCDateTime)


BREAKER_WAITERS: sa.Table = BreakerWaiter.__table__  # type: ignore[attr-defined]

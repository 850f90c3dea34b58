"""The projection writes that run for every stage of every job, prebuilt once per dialect and sent
through the group commit.

Built from the tables (not the ORM classes) with bound parameters, so SQLAlchemy compiles each
statement once and every later call only binds values; this is what keeps the status projection
cheap next to Temporal's own work (see bench/throughput.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from redrive.status import JobStatus
from redrive.store.models import JOB_STAGES, JOBS, STAGE_FAILURES, Job

FINAL = (JobStatus.DEAD_LETTER.value, JobStatus.ARCHIVED.value, JobStatus.CANCELLED.value)
"""A run that reached one of these is over: a late write from one of its activities (a stage that
finished after its run timed out or was terminated) must not bring it back to life."""


def not_final() -> sa.ColumnElement[bool]:
    """The job's current run has not ended (see `FINAL`)."""
    # Not `not_in(FINAL)`: an expanding IN cannot run in an executemany, and batches do.
    return sa.and_(*(JOBS.c.status != status for status in FINAL))


def same_run(run_id: Any) -> sa.ColumnElement[bool]:
    """The job's row still belongs to run `run_id` (a value or a bound parameter): a write from a run
    that a retry has superseded changes nothing."""
    condition: sa.ColumnElement[bool] = JOBS.c.run_id == run_id
    return condition


StatementName = Literal[
    "job_created", "job_running", "stage_running", "stage_complete", "job_status", "attempt_lost"
]
Row = tuple[StatementName, dict[str, Any]]
"""One prebuilt statement, by its `Statements` field, and the parameters of one execution."""


@dataclass(frozen=True)
class StageStart:
    """A stage attempt that has just started on a worker."""

    job_id: str
    tenant_id: str
    job_type: str
    run_id: str
    payload: dict[str, Any]
    stage: str
    position: int
    attempt: int
    max_attempts: int
    at: datetime
    finished_at: datetime | None = None
    """Set when the attempt had already succeeded by the time its start was written."""


@dataclass(frozen=True)
class Statements:
    """One dialect's prebuilt statements."""

    job_created: Any
    job_running: Any
    stage_running: Any
    stage_complete: Any
    job_status: Any
    attempt_lost: Any


@functools.cache
def statements(dialect: str) -> Statements:
    """The statements for `dialect` ("postgresql" or "sqlite")."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    job = insert(JOBS)
    stage = insert(JOB_STAGES)
    return Statements(
        job_created=job.on_conflict_do_nothing(index_elements=["id"]),
        job_running=job.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "status": job.excluded.status,
                "stage": job.excluded.stage,
                "run_id": job.excluded.run_id,
                "attempt": job.excluded.attempt,
                "max_attempts": job.excluded.max_attempts,
                "next_retry_at": None,
                "updated_at": job.excluded.updated_at,
            },
            where=sa.or_(sa.not_(same_run(job.excluded.run_id)), not_final()),
        ),
        stage_running=stage.on_conflict_do_update(
            index_elements=["job_id", "stage"],
            set_={
                "status": stage.excluded.status,
                "executions": JOB_STAGES.c.executions + 1,
                "attempt": stage.excluded.attempt,
                "finished_at": stage.excluded.finished_at,
            },
        ),
        stage_complete=sa.update(JOB_STAGES)
        .where(JOB_STAGES.c.job_id == sa.bindparam("b_job_id"), JOB_STAGES.c.stage == sa.bindparam("b_stage"))
        .values(status=sa.bindparam("b_status"), finished_at=sa.bindparam("b_at")),
        job_status=sa.update(JOBS)
        .where(
            JOBS.c.id == sa.bindparam("b_job_id"),
            same_run(sa.bindparam("b_run_id")),
            not_final(),
        )
        .values(
            status=sa.bindparam("b_status"),
            stage=sa.func.coalesce(sa.bindparam("b_stage", type_=sa.String), JOBS.c.stage),
            updated_at=sa.bindparam("b_at", type_=JOBS.c.updated_at.type),
            finished_at=sa.bindparam("b_finished_at", type_=JOBS.c.finished_at.type),
            next_retry_at=None,
        ),
        attempt_lost=insert(STAGE_FAILURES).on_conflict_do_nothing(),
    )


def job_created(job: Job) -> list[Row]:
    """Insert a submitted job unless its row exists (its first stage may have written it first)."""
    return [("job_created", job.model_dump())]


def stage_started(start: StageStart) -> list[Row]:
    """Project `running` (and the stage `complete` if it has finished); creates the job row if the
    API crashed before writing it."""
    running = JobStatus.RUNNING.value
    job = {
        "id": start.job_id,
        "tenant_id": start.tenant_id,
        "type": start.job_type,
        "status": running,
        "stage": start.stage,
        "run_id": start.run_id,
        "payload": start.payload,
        "idempotency_key": None,
        "attempt": start.attempt,
        "max_attempts": start.max_attempts,
        "next_retry_at": None,
        "error_reason": None,
        "error_type": None,
        "error_message": None,
        "created_at": start.at,
        "updated_at": start.at,
        "finished_at": None,
    }
    stage = {
        "job_id": start.job_id,
        "stage": start.stage,
        "position": start.position,
        "status": running if start.finished_at is None else JobStatus.COMPLETE.value,
        "executions": 1,
        "attempt": start.attempt,
        "started_at": start.at,
        "finished_at": start.finished_at,
    }
    return [("job_running", job), ("stage_running", stage)]


def stage_finished(job_id: str, stage: str, at: datetime) -> list[Row]:
    """Mark the stage complete."""
    return [
        (
            "stage_complete",
            {"b_job_id": job_id, "b_stage": stage, "b_status": JobStatus.COMPLETE.value, "b_at": at},
        )
    ]


LOST = "AttemptLost"


def attempt_lost(job_id: str, run_id: str, stage: str, attempt: int, retried_at: datetime) -> list[Row]:
    """An attempt that recorded no outcome (its worker crashed, lost contact or could not reach the
    database), written by the attempt after it; an outcome the attempt did record stays."""
    failure = {
        "job_id": job_id,
        "run_id": run_id,
        "stage": stage,
        "attempt": attempt,
        "error_type": LOST,
        "message": f"attempt {attempt} ended without reporting an outcome: its worker stopped or lost "
        "contact (Temporal's heartbeat or start-to-close timeout ran out), and Temporal retried it",
        "started_at": retried_at,
        "failed_at": retried_at,
        "next_retry_at": retried_at,
    }
    return [("attempt_lost", failure)]


def status_changed(
    job_id: str, run_id: str, status: JobStatus, at: datetime, stage: str | None = None
) -> list[Row]:
    """Project a status the workflow reached in run `run_id` (a stale run changes nothing)."""
    terminal = status in (JobStatus.COMPLETE, JobStatus.DEAD_LETTER, JobStatus.CANCELLED)
    parameters = {
        "b_job_id": job_id,
        "b_run_id": run_id,
        "b_status": status.value,
        "b_stage": stage,
        "b_at": at,
        "b_finished_at": at if terminal else None,
    }
    return [("job_status", parameters)]


def grouped(dialect: str, rows: Sequence[Row]) -> list[tuple[Any, list[dict[str, Any]] | dict[str, Any]]]:
    """`rows` as (statement, parameters): each statement once with all its parameter sets (one
    executemany), statements in the order first seen. Callers batch writes of different jobs, at
    most one per job (each waits for its own), so regrouping them keeps every job's order."""
    prebuilt = statements(dialect)
    by_name: dict[StatementName, list[dict[str, Any]]] = {}
    for name, parameters in rows:
        by_name.setdefault(name, []).append(parameters)
    return [
        (getattr(prebuilt, name), batch if len(batch) > 1 else batch[0]) for name, batch in by_name.items()
    ]


async def execute(connection: AsyncConnection, rows: Sequence[Row]) -> None:
    """Run `rows` (see `grouped`)."""
    for statement, parameters in grouped(connection.dialect.name, rows):
        await connection.execute(statement, parameters)


def execute_sync(connection: sa.Connection, rows: Sequence[Row]) -> None:
    """Run `rows` (see `grouped`) on a synchronous connection."""
    for statement, parameters in grouped(connection.dialect.name, rows):
        connection.execute(statement, parameters)

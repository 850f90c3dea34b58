"""The projection writes that run for every stage of every job, prebuilt once per dialect.

Built from the tables (not the ORM classes) with bound parameters, so SQLAlchemy compiles each
statement once and every later call only binds values; this is what keeps the status projection
cheap next to Temporal's own work (see bench/throughput.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from redrive.status import JobStatus
from redrive.store.models import Job, JobStage

JOBS: sa.Table = Job.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
JOB_STAGES: sa.Table = JobStage.__table__  # type: ignore[attr-defined]


FINAL = (JobStatus.DEAD_LETTER.value, JobStatus.ARCHIVED.value, JobStatus.CANCELLED.value)
"""A run that reached one of these is over: a late write from one of its activities (a stage that
finished after its run timed out or was terminated) must not bring it back to life."""


@dataclass(frozen=True)
class Statements:
    """One dialect's prebuilt statements."""

    job_running: Any
    stage_running: Any
    stage_complete: Any
    job_status: Any


@functools.cache
def statements(dialect: str) -> Statements:
    """The statements for `dialect` ("postgresql" or "sqlite")."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    job = insert(JOBS)
    stage = insert(JOB_STAGES)
    return Statements(
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
            where=sa.or_(JOBS.c.run_id != job.excluded.run_id, JOBS.c.status.not_in(FINAL)),
        ),
        stage_running=stage.on_conflict_do_update(
            index_elements=["job_id", "stage"],
            set_={
                "status": stage.excluded.status,
                "executions": JOB_STAGES.c.executions + 1,
                "attempt": stage.excluded.attempt,
                "finished_at": None,
            },
        ),
        stage_complete=sa.update(JOB_STAGES)
        .where(JOB_STAGES.c.job_id == sa.bindparam("b_job_id"), JOB_STAGES.c.stage == sa.bindparam("b_stage"))
        .values(status=sa.bindparam("b_status"), finished_at=sa.bindparam("b_at")),
        job_status=sa.update(JOBS)
        .where(
            JOBS.c.id == sa.bindparam("b_job_id"),
            JOBS.c.run_id == sa.bindparam("b_run_id"),
            JOBS.c.status.not_in(FINAL),
        )
        .values(
            status=sa.bindparam("b_status"),
            stage=sa.func.coalesce(sa.bindparam("b_stage", type_=sa.String), JOBS.c.stage),
            updated_at=sa.bindparam("b_at", type_=JOBS.c.updated_at.type),
            finished_at=sa.bindparam("b_finished_at", type_=JOBS.c.finished_at.type),
            next_retry_at=None,
        ),
    )

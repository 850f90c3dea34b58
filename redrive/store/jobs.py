"""Reads and writes of the job projection: `jobs`, `job_stages` and `stage_failures`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.status import JobStatus
from redrive.store.hot_paths import JOBS
from redrive.store.models import Job, JobAction, JobStage, StageFailure
from redrive.store.upsert import dialect_insert


@dataclass(frozen=True)
class JobFilter:
    """What a job listing is narrowed to (always one tenant)."""

    tenant_id: str
    status: str | None = None
    type: str | None = None
    archived_before: datetime | None = None
    """Dead jobs that finished before this read as `archived` (the maintenance pass may lag)."""
    stage: str | None = None
    error_reason: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_archived: bool = False
    """Archived jobs are left out unless asked for (or `status` is `archived`)."""


class JobRepository:
    """Job rows within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_absent(self, job: Job) -> Job:
        """Insert `job` unless a job with its id exists; return the stored row either way."""
        statement = dialect_insert(self.session, JOBS).values(**job.model_dump()).on_conflict_do_nothing()
        if (await self.session.exec(statement)).rowcount == 1:
            return job
        stored = await self.session.get(Job, job.id, populate_existing=True)
        assert stored is not None  # just inserted or already there
        return stored

    async def get(self, tenant_id: str, job_id: str) -> Job | None:
        """The tenant's job, or None (another tenant's job is None too)."""
        job = await self.session.get(Job, job_id, populate_existing=True)
        return job if job is not None and job.tenant_id == tenant_id else None

    async def page(self, where: JobFilter, limit: int, after: tuple[datetime, str] | None) -> list[Job]:
        """Newest first, `limit` rows after the keyset position `after` (created_at, id)."""
        query = select(Job).where(*self._conditions(where))
        if after is not None:
            query = query.where(sa.tuple_(col(Job.created_at), col(Job.id)) < sa.tuple_(*after))
        query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit)
        return list((await self.session.exec(query)).all())

    async def counts(self, where: JobFilter) -> dict[str, int]:
        """Jobs per status under the same filter, ignoring the status filter itself."""
        archived_too = where.include_archived or where.status == JobStatus.ARCHIVED.value
        conditions = self._conditions(dataclasses.replace(where, status=None, include_archived=archived_too))
        status = effective_status(where.archived_before)
        query = sa.select(status, sa.func.count()).where(*conditions).group_by(status)
        rows = (await (await self.session.connection()).execute(query)).all()
        return {str(name): int(count) for name, count in rows}

    @staticmethod
    def _conditions(where: JobFilter) -> list[sa.ColumnElement[bool]]:
        status = effective_status(where.archived_before)
        conditions = [col(Job.tenant_id) == where.tenant_id]
        if where.status is not None:
            conditions.append(status == where.status)
        elif not where.include_archived:
            conditions.append(status != JobStatus.ARCHIVED.value)
        equal = ((Job.type, where.type), (Job.stage, where.stage), (Job.error_reason, where.error_reason))
        conditions += [col(column) == value for column, value in equal if value is not None]
        if where.created_after is not None:
            conditions.append(col(Job.created_at) >= where.created_after)
        if where.created_before is not None:
            conditions.append(col(Job.created_at) < where.created_before)
        return conditions

    async def stages(self, job_id: str) -> Sequence[JobStage]:
        """The job's stages that have started, in stage order."""
        query = select(JobStage).where(JobStage.job_id == job_id).order_by(col(JobStage.position))
        return (await self.session.exec(query)).all()

    async def stage_failed(self, failure: StageFailure, will_retry: bool) -> None:
        """Record a failed attempt; project `retrying` with the next attempt's time if one follows."""
        statement = dialect_insert(self.session, StageFailure).values(**failure.model_dump())
        await self.session.exec(statement.on_conflict_do_nothing())
        status = JobStatus.RETRYING if will_retry else JobStatus.RUNNING
        await self.session.exec(
            sa.update(Job)
            .where(col(Job.id) == failure.job_id, col(Job.run_id) == failure.run_id)
            .values(
                status=status.value,
                next_retry_at=failure.next_retry_at if will_retry else None,
                error_type=failure.error_type,
                error_message=failure.message,
                updated_at=failure.failed_at,
            )
        )
        await self.session.exec(
            sa.update(JobStage)
            .where(col(JobStage.job_id) == failure.job_id, col(JobStage.stage) == failure.stage)
            .values(status=status.value if will_retry else "failed", finished_at=failure.failed_at)
        )

    async def failures(self, job_id: str, run_id: str) -> list[StageFailure]:
        """Every failed attempt of the run, oldest first."""
        query = (
            select(StageFailure)
            .where(StageFailure.job_id == job_id, StageFailure.run_id == run_id)
            .order_by(col(StageFailure.failed_at), col(StageFailure.attempt))
        )
        return list((await self.session.exec(query)).all())

    async def project_terminal(self, job: Job, **fields: object) -> None:
        """Upsert `job` in its final status (the row may be missing if nothing was projected before);
        a row already taken over by another run is left alone."""
        values: dict[str, object] = {
            "status": job.status,
            "updated_at": job.updated_at,
            "finished_at": job.updated_at,
            "next_retry_at": None,
            **fields,
        }
        statement = dialect_insert(self.session, Job).values(**{**job.model_dump(), **values})
        await self.session.exec(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_=values,
                where=sa.or_(col(Job.run_id) == job.run_id, col(Job.run_id).is_(None)),
            )
        )

    async def record_action(self, action: JobAction) -> None:
        """Keep what a person did to the job."""
        self.session.add(action)

    async def actions(self, job_id: str) -> Sequence[JobAction]:
        """Everything people did to the job, oldest first."""
        query = (
            select(JobAction).where(JobAction.job_id == job_id).order_by(col(JobAction.at), col(JobAction.id))
        )
        return (await self.session.exec(query)).all()

    async def archive(self, runs: Sequence[tuple[str, str]], at: datetime) -> None:
        """Mark the dead jobs of `runs` (job id, run id) archived, unless they have moved on."""
        for job_id, run_id in runs:
            await self.session.exec(
                sa.update(Job)
                .where(
                    col(Job.id) == job_id,
                    col(Job.run_id) == run_id,
                    col(Job.status) == JobStatus.DEAD_LETTER.value,
                )
                .values(status=JobStatus.ARCHIVED.value, updated_at=at)
            )

    async def claim_retry(self, job_id: str, dead_run: str, at: datetime) -> bool:
        """Take the dead run for one retry: True for exactly one of any number of racing callers."""
        dead = (JobStatus.DEAD_LETTER.value, JobStatus.ARCHIVED.value)
        result = await self.session.exec(
            sa.update(Job)
            .where(col(Job.id) == job_id, col(Job.run_id) == dead_run, col(Job.status).in_(dead))
            .values(status=JobStatus.QUEUED.value, updated_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def release_retry(self, job_id: str, dead_run: str, status: str, at: datetime) -> None:
        """Give a claimed run back when its retry could not be started."""
        await self.session.exec(
            sa.update(Job)
            .where(col(Job.id) == job_id, col(Job.run_id) == dead_run)
            .values(status=status, updated_at=at)
        )

    async def requeue(self, job_id: str, old_run_id: str, new_run_id: str, at: datetime) -> None:
        """After a reset: the job waits for a worker in its new run (unless that run already started)."""
        await self.session.exec(
            sa.update(Job)
            .where(col(Job.id) == job_id, col(Job.run_id) == old_run_id)
            .values(
                status=JobStatus.QUEUED.value,
                run_id=new_run_id,
                attempt=0,
                next_retry_at=None,
                error_reason=None,
                error_type=None,
                error_message=None,
                finished_at=None,
                updated_at=at,
            )
        )


def effective_status(archived_before: datetime | None) -> sa.ColumnElement[str]:
    """`jobs.status`, with dead jobs that finished before `archived_before` reading as archived."""
    status: sa.ColumnElement[str] = JOBS.c.status
    if archived_before is None:
        return status
    old_and_dead = sa.and_(
        col(Job.status) == JobStatus.DEAD_LETTER.value, col(Job.finished_at) < archived_before
    )
    return sa.case((old_and_dead, JobStatus.ARCHIVED.value), else_=status)


def shown_status(job: Job, archived_before: datetime) -> str:
    """The status a reader sees: `effective_status` for one loaded row."""
    dead, finished = job.status == JobStatus.DEAD_LETTER.value, job.finished_at
    return (
        JobStatus.ARCHIVED.value
        if dead and finished is not None and finished < archived_before
        else job.status
    )

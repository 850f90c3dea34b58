"""Reads of the job projection (`jobs`, `job_stages`, `stage_failures`, `job_actions`); every write of
them lives in `redrive.store.projection`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.status import JobStatus
from redrive.store.archival import ArchiveRule
from redrive.store.models import JOB_COUNTS, JOBS, Job, JobAction, JobStage, StageFailure


@dataclass(frozen=True)
class JobFilter:
    """What a job listing is narrowed to (always one tenant)."""

    tenant_id: str
    status: str | None = None
    type: str | None = None
    archive: ArchiveRule | None = None
    """Dead jobs read as `archived` by this rule (the maintenance pass may lag behind it)."""
    stage: str | None = None
    error_reason: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_archived: bool = False
    """Archived jobs are left out unless asked for (or `status` is `archived`, or a label asks)."""
    labels: tuple[tuple[str, str, str | None], ...] | None = None
    """The (job type, status, stage) combinations a label filter admits (stage None: any)."""


@dataclass(frozen=True)
class Snapshot:
    """A job's row in short: its run, status and stage, and each stage row's status by stage."""

    run_id: str | None
    status: str
    stage: str | None
    stages: dict[str, str] = dataclasses.field(default_factory=dict)


class JobRepository:
    """Job rows within the caller's session, read only."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, job_id: str) -> Job | None:
        """The tenant's job, or None (another tenant's job is None too)."""
        job = await self.session.get(Job, job_id, populate_existing=True)
        return job if job is not None and job.tenant_id == tenant_id else None

    async def get_many(self, tenant_id: str, job_ids: Sequence[str]) -> dict[str, Job]:
        """The tenant's jobs among `job_ids`, by id."""
        query = select(Job).where(col(Job.id).in_(job_ids), Job.tenant_id == tenant_id)
        found = await self.session.exec(query.execution_options(populate_existing=True))
        return {job.id: job for job in found}

    async def page(self, where: JobFilter, limit: int, after: tuple[datetime, str] | None) -> list[Job]:
        """Newest first, `limit` rows after the keyset position `after` (created_at, id)."""
        query = select(Job).where(*self._conditions(where))
        if after is not None:
            query = query.where(sa.tuple_(col(Job.created_at), col(Job.id)) < sa.tuple_(*after))
        query = query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit)
        return list((await self.session.exec(query)).all())

    async def counts(self, where: JobFilter) -> dict[str, int]:
        """Jobs per status under the same filter, ignoring the status filter itself. Filtered by
        tenant and type only, they are read from `job_counts` (a few rows, whatever the number of
        jobs); other filters count the matching rows."""
        archived_too = where.include_archived or where.status == JobStatus.ARCHIVED.value
        narrowed = (where.stage, where.error_reason, where.created_after, where.created_before, where.labels)
        if all(value is None for value in narrowed):
            counts = await self._kept_counts(where)
            if not archived_too:
                counts.pop(JobStatus.ARCHIVED.value, None)
            return counts
        conditions = self._conditions(dataclasses.replace(where, status=None, include_archived=archived_too))
        status = _status(where.archive)
        query = sa.select(status, sa.func.count()).where(*conditions).group_by(status)
        rows = (await (await self.session.connection()).execute(query)).all()
        return {str(name): int(count) for name, count in rows}

    async def _kept_counts(self, where: JobFilter) -> dict[str, int]:
        kept = sa.select(JOB_COUNTS.c.status, sa.func.sum(JOB_COUNTS.c.n)).where(
            JOB_COUNTS.c.tenant_id == where.tenant_id
        )
        if where.type is not None:
            kept = kept.where(JOB_COUNTS.c.type == where.type)
        connection = await self.session.connection()
        rows = (await connection.execute(kept.group_by(JOB_COUNTS.c.status))).all()
        counts = {str(name): int(total) for name, total in rows if total}
        dead = JobStatus.DEAD_LETTER.value
        if where.archive is not None and counts.get(dead):
            # Dead jobs past the archive age that the maintenance pass has not stamped yet read as
            # archived: few rows (the pass's lag), found through the (tenant, status, finished_at) index.
            overdue_rows = [
                JOBS.c.tenant_id == where.tenant_id,
                JOBS.c.status == dead,
                JOBS.c.finished_at < where.archive.cutoff,
                *([JOBS.c.type == where.type] if where.type is not None else []),
            ]
            found = await connection.execute(sa.select(sa.func.count()).where(*overdue_rows))
            if overdue := int(found.scalar_one()):
                counts[dead] -= overdue
                counts[JobStatus.ARCHIVED.value] = counts.get(JobStatus.ARCHIVED.value, 0) + overdue
                if not counts[dead]:
                    del counts[dead]
        return counts

    @staticmethod
    def _conditions(where: JobFilter) -> list[sa.ColumnElement[bool]]:
        conditions = [col(Job.tenant_id) == where.tenant_id]
        if where.status is not None:
            conditions.append(_status_is(where.archive, where.status))
        elif not where.include_archived and where.labels is None:
            conditions.append(_not_archived(where.archive))
        if where.labels is not None:
            conditions.append(sa.or_(sa.false(), *(_reads_as(where.archive, *pair) for pair in where.labels)))
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

    async def failures(self, job_id: str, run_id: str) -> list[StageFailure]:
        """Every failed attempt of the run, oldest first."""
        query = (
            select(StageFailure)
            .where(StageFailure.job_id == job_id, StageFailure.run_id == run_id)
            .order_by(col(StageFailure.failed_at), col(StageFailure.attempt))
        )
        return list((await self.session.exec(query)).all())

    async def snapshots(self, job_ids: Sequence[str]) -> dict[str, Snapshot]:
        """What the projection says of each of `job_ids` that has a row (any tenant): for comparing
        it with Temporal."""
        jobs = await self.session.exec(
            select(col(Job.id), col(Job.run_id), col(Job.status), col(Job.stage)).where(
                col(Job.id).in_(job_ids)
            )
        )
        found = {job_id: Snapshot(run_id, status, stage) for job_id, run_id, status, stage in jobs}
        stages = await self.session.exec(
            select(col(JobStage.job_id), col(JobStage.stage), col(JobStage.status)).where(
                col(JobStage.job_id).in_(job_ids)
            )
        )
        for job_id, stage, status in stages:
            if job_id in found:
                found[job_id].stages[stage] = status
        return found

    async def actions(self, job_id: str) -> Sequence[JobAction]:
        """Everything people did to the job, oldest first."""
        query = (
            select(JobAction).where(JobAction.job_id == job_id).order_by(col(JobAction.at), col(JobAction.id))
        )
        return (await self.session.exec(query)).all()


def _reads_as(
    archive: ArchiveRule | None, job_type: str, wanted: str, stage: str | None
) -> sa.ColumnElement[bool]:
    condition = sa.and_(JOBS.c.type == job_type, _status_is(archive, wanted))
    return condition if stage is None else sa.and_(condition, JOBS.c.stage == stage)


def _status_is(archive: ArchiveRule | None, wanted: str) -> sa.ColumnElement[bool]:
    if archive is None:
        return JOBS.c.status == wanted
    return archive.status_is_sql(JOBS.c.status, JOBS.c.finished_at, wanted)


def _not_archived(archive: ArchiveRule | None) -> sa.ColumnElement[bool]:
    if archive is None:
        return JOBS.c.status != JobStatus.ARCHIVED.value
    return archive.not_archived_sql(JOBS.c.status, JOBS.c.finished_at)


def _status(archive: ArchiveRule | None) -> sa.ColumnElement[str]:
    status: sa.ColumnElement[str] = JOBS.c.status
    return status if archive is None else archive.job_status_sql(status, JOBS.c.finished_at)

"""The projection writes that share a transaction with other work (a dead-letter insert, a retry's
claim, maintenance): each runs in the caller's session, and the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.status import JobStatus
from redrive.store.models import JOB_STAGES, JOBS, Job, JobAction, JobStage, StageFailure
from redrive.store.projection.statements import same_run
from redrive.store.upsert import dialect_insert

RETRYABLE = (JobStatus.DEAD_LETTER.value, JobStatus.ARCHIVED.value)
"""A job in one of these may be retried: an archived job is dead too."""


class ProjectionWrites:
    """Writes of `jobs`, `job_stages`, `stage_failures` and `job_actions` within `session`."""

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

    async def stage_failed(self, failure: StageFailure, will_retry: bool) -> None:
        """Record a failed attempt; project `retrying` with the next attempt's time if one follows."""
        statement = dialect_insert(self.session, StageFailure).values(**failure.model_dump())
        await self.session.exec(statement.on_conflict_do_nothing())
        status = JobStatus.RETRYING if will_retry else JobStatus.RUNNING
        await self.session.exec(
            sa.update(JOBS)
            .where(JOBS.c.id == failure.job_id, same_run(failure.run_id))
            .values(
                status=status.value,
                next_retry_at=failure.next_retry_at if will_retry else None,
                error_type=failure.error_type,
                error_message=failure.message,
                updated_at=failure.failed_at,
            )
        )
        await self.session.exec(
            sa.update(JOB_STAGES)
            .where(JOB_STAGES.c.job_id == failure.job_id, JOB_STAGES.c.stage == failure.stage)
            .values(status=status.value if will_retry else "failed", finished_at=failure.failed_at)
        )

    async def terminal(self, job: Job, **fields: object) -> None:
        """Upsert `job` in its final status (the row may be missing if nothing was projected before);
        a row already taken over by another run is left alone."""
        values: dict[str, object] = {
            "status": job.status,
            "updated_at": job.updated_at,
            "finished_at": job.updated_at,
            "next_retry_at": None,
            **fields,
        }
        statement = dialect_insert(self.session, JOBS).values(**{**job.model_dump(), **values})
        await self.session.exec(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_=values,
                where=sa.or_(same_run(job.run_id), JOBS.c.run_id.is_(None)),
            )
        )

    async def repair_stage(self, row: JobStage) -> None:
        """Write a stage's row as its run's history shows it (executions never go down)."""
        statement = dialect_insert(self.session, JOB_STAGES).values(**row.model_dump())
        new = statement.excluded
        await self.session.exec(
            statement.on_conflict_do_update(
                index_elements=["job_id", "stage"],
                set_={
                    "position": new.position,
                    "status": new.status,
                    "attempt": new.attempt,
                    "started_at": new.started_at,
                    "finished_at": new.finished_at,
                    "executions": sa.case(
                        (JOB_STAGES.c.executions > new.executions, JOB_STAGES.c.executions),
                        else_=new.executions,
                    ),
                },
            )
        )

    async def requeue_many(self, runs: Sequence[tuple[str, str, str]], at: datetime) -> None:
        """After a retry restarted each of `runs` (job id, old run id, new run id), in one executemany:
        the job waits for a worker in its new run (unless that run already started)."""
        if not runs:
            return
        statement = (
            sa.update(JOBS)
            .where(JOBS.c.id == sa.bindparam("b_job_id"), same_run(sa.bindparam("b_old_run")))
            .values(
                status=JobStatus.QUEUED.value,
                run_id=sa.bindparam("b_new_run"),
                attempt=0,
                next_retry_at=None,
                error_reason=None,
                error_type=None,
                error_message=None,
                finished_at=None,
                updated_at=at,
            )
        )
        rows = [{"b_job_id": job, "b_old_run": old, "b_new_run": new} for job, old, new in runs]
        await (await self.session.connection()).execute(statement, rows if len(rows) > 1 else rows[0])

    async def record_action(self, action: JobAction) -> None:
        """Keep what a person did to the job."""
        self.session.add(action)

    async def archive(self, runs: Sequence[tuple[str, str]], at: datetime) -> None:
        """Mark the dead jobs of `runs` (job id, run id) archived, unless they have moved on."""
        for job_id, run_id in runs:
            await self.session.exec(
                sa.update(JOBS)
                .where(JOBS.c.id == job_id, same_run(run_id), JOBS.c.status == JobStatus.DEAD_LETTER.value)
                .values(status=JobStatus.ARCHIVED.value, updated_at=at)
            )

    async def claim_retry(
        self, job_id: str, dead_run: str, at: datetime, stale_before: datetime | None = None
    ) -> bool:
        """Take the dead run for one retry: True for exactly one of any number of racing callers.

        With `stale_before`, a claim taken before it whose taker never recorded a new run (it died
        between claim and record) may be taken over: the dead run's row is only ever `queued` while
        claimed, and a reset resent with the same request id makes no second run."""
        return job_id in await self.claim_many_retries([(job_id, dead_run)], at, stale_before)

    async def claim_many_retries(
        self, runs: Sequence[tuple[str, str]], at: datetime, stale_before: datetime | None = None
    ) -> set[str]:
        """`claim_retry` for each of `runs` (job id, dead run id), in one statement: the jobs won."""
        if not runs:
            return set()
        claimable: sa.ColumnElement[bool] = JOBS.c.status.in_(RETRYABLE)
        if stale_before is not None:
            abandoned = sa.and_(JOBS.c.status == JobStatus.QUEUED.value, JOBS.c.updated_at < stale_before)
            claimable = sa.or_(claimable, abandoned)
        result = await self.session.exec(
            sa.update(JOBS)
            .where(_of_runs(runs), claimable)
            .values(status=JobStatus.QUEUED.value, updated_at=at)
            .returning(JOBS.c.id)
        )
        return set(result.scalars())

    async def renew_claims(self, runs: Sequence[tuple[str, str]], at: datetime) -> None:
        """Keep the claims of `runs` (job id, dead run id) from lapsing: their retries are alive."""
        if runs:
            await self.session.exec(
                sa.update(JOBS)
                .where(_of_runs(runs), JOBS.c.status == JobStatus.QUEUED.value)
                .values(updated_at=at)
            )

    async def release_retry(self, job_id: str, dead_run: str, status: str, at: datetime) -> None:
        """Give a claimed run back when its retry could not be started."""
        await self.session.exec(
            sa.update(JOBS)
            .where(JOBS.c.id == job_id, same_run(dead_run))
            .values(status=status, updated_at=at)
        )

    async def replace_payload(
        self, job_id: str, old_run_id: str, new_run_id: str, payload: dict[str, Any]
    ) -> None:
        """The payload a retry edited replaces the stored one, whether or not the new run has
        written its row already."""
        await self.session.exec(
            sa.update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.run_id.in_([old_run_id, new_run_id]))
            .values(payload=payload)
        )


def _of_runs(runs: Sequence[tuple[str, str]]) -> sa.ColumnElement[bool]:
    """The rows of `runs` (job id, run id). The ids alone again, because SQLite scans the whole
    table for a row-value IN but searches the primary key for a plain one."""
    ids = [job_id for job_id, _ in runs]
    return sa.and_(JOBS.c.id.in_(ids), sa.tuple_(JOBS.c.id, JOBS.c.run_id).in_(runs))

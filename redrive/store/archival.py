"""The archived rule, stated once: a dead letter, and the job it holds, reads as archived once it has
been dead for `archive_after` (7 days by default), whether or not the maintenance pass has stamped
it yet. The pass stores what this rule already shows every reader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from redrive.status import JobStatus
from redrive.store.types import utcnow


@dataclass(frozen=True)
class ArchiveRule:
    """Dead since before `cutoff` means archived; the two methods say so for a loaded row and in SQL."""

    cutoff: datetime

    @classmethod
    def after(cls, archive_after: timedelta, now: datetime | None = None) -> ArchiveRule:
        """The rule in force at `now` (the current time by default)."""
        return cls((now or utcnow()) - archive_after)

    def archived(self, dead: bool, died_at: datetime | None) -> bool:
        """Whether a dead thing that died at `died_at` reads as archived."""
        return dead and died_at is not None and died_at < self.cutoff

    def archived_sql(
        self, dead: sa.ColumnElement[bool], died_at: sa.ColumnElement[datetime]
    ) -> sa.ColumnElement[bool]:
        """`archived` as a SQL condition on a row's columns."""
        return sa.and_(dead, died_at < self.cutoff)

    def job_status(self, status: str, finished_at: datetime | None) -> str:
        """The status a reader sees for a job row."""
        dead = status == JobStatus.DEAD_LETTER.value
        return JobStatus.ARCHIVED.value if self.archived(dead, finished_at) else status

    def status_is_sql(
        self, status: sa.ColumnElement[str], finished_at: sa.ColumnElement[datetime], wanted: str
    ) -> sa.ColumnElement[bool]:
        """A row reads as `wanted`: a condition on the stored columns that an index on (status, …)
        serves, unlike a comparison with `job_status_sql`."""
        dead = JobStatus.DEAD_LETTER.value
        if wanted == JobStatus.ARCHIVED.value:
            return sa.or_(status == wanted, sa.and_(status == dead, finished_at < self.cutoff))
        if wanted == dead:
            return sa.and_(status == dead, sa.or_(finished_at.is_(None), finished_at >= self.cutoff))
        return status == wanted

    def not_archived_sql(
        self, status: sa.ColumnElement[str], finished_at: sa.ColumnElement[datetime]
    ) -> sa.ColumnElement[bool]:
        """A row does not read as archived."""
        dead = JobStatus.DEAD_LETTER.value
        young = sa.or_(status != dead, finished_at.is_(None), finished_at >= self.cutoff)
        return sa.and_(status != JobStatus.ARCHIVED.value, young)

    def job_status_sql(
        self, status: sa.ColumnElement[str], finished_at: sa.ColumnElement[datetime]
    ) -> sa.ColumnElement[str]:
        """`job_status` as a SQL expression."""
        old_and_dead = self.archived_sql(status == JobStatus.DEAD_LETTER.value, finished_at)
        return sa.case((old_and_dead, JobStatus.ARCHIVED.value), else_=status)

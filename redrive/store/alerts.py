"""Alert windows: one e-mail per error fingerprint per window, the rest counted for a digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.store.models import AlertWindow
from redrive.store.upsert import dialect_insert

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AlertDecision:
    """Send now (carrying `digest` earlier dead letters that were only counted), or only count it.

    A decision to send has already opened the window at `opened_at`, in the transaction that made
    it; `previous` is when the window opened before, for `release`."""

    send: bool
    digest: int
    opened_at: datetime = NEVER
    previous: datetime = NEVER


class AlertWindowRepository:
    """Alert windows within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, fingerprint: str, job_id: str, now: datetime, window: timedelta) -> AlertDecision:
        """Send when no window for `fingerprint` is open at `now`, and open one in the same
        transaction; else count this dead letter for the next alert or digest.

        The window's row is locked before it is read (FOR UPDATE on PostgreSQL; on SQLite the insert
        before it takes the database's write lock), so of any number of dead letters deciding at
        once, on any number of workers, exactly one per window is told to send."""
        absent = dialect_insert(self.session, AlertWindow).values(
            fingerprint=fingerprint, opened_at=NEVER, suppressed=0, sample_job_id=job_id
        )
        await self.session.exec(absent.on_conflict_do_nothing())
        query = select(AlertWindow).where(AlertWindow.fingerprint == fingerprint).with_for_update()
        row = (await self.session.exec(query.execution_options(populate_existing=True))).one()
        if row.opened_at <= now - window:
            decision = AlertDecision(send=True, digest=row.suppressed, opened_at=now, previous=row.opened_at)
            row.opened_at, row.suppressed = now, 0  # the counted ones travel with this alert
        else:
            decision = AlertDecision(send=False, digest=0)
            row.suppressed += 1
        row.sample_job_id = job_id
        self.session.add(row)
        return decision

    async def release(self, fingerprint: str, claim: AlertDecision, count_it: bool) -> None:
        """A claimed alert was not delivered: close its window again (unless a later claim took it)
        and give back the counts it carried, plus its own dead letter when `count_it`, so the next
        alert or the digest reports them."""
        await self.session.exec(
            sa.update(AlertWindow)
            .where(col(AlertWindow.fingerprint) == fingerprint, col(AlertWindow.opened_at) == claim.opened_at)
            .values(opened_at=claim.previous)
        )
        await self.session.exec(
            sa.update(AlertWindow)
            .where(col(AlertWindow.fingerprint) == fingerprint)
            .values(suppressed=col(AlertWindow.suppressed) + claim.digest + int(count_it))
        )

    async def owed_digests(self, window_opened_before: datetime) -> list[AlertWindow]:
        """Windows that have closed with dead letters counted but not yet e-mailed."""
        query = select(AlertWindow).where(
            col(AlertWindow.opened_at) <= window_opened_before, col(AlertWindow.suppressed) > 0
        )
        return list((await self.session.exec(query)).all())

    async def digest_sent(self, fingerprint: str, count: int) -> None:
        """`count` counted dead letters were reported in a digest; the window stays as it is."""
        left = col(AlertWindow.suppressed) - count
        await self.session.exec(
            sa.update(AlertWindow)
            .where(col(AlertWindow.fingerprint) == fingerprint)
            .values(suppressed=sa.case((left < 0, 0), else_=left))
        )

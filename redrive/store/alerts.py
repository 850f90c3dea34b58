"""Alert windows: one e-mail per error fingerprint per window, the rest counted for a digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.store.models import AlertWindow
from redrive.store.upsert import dialect_insert

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AlertDecision:
    """Send now (carrying `digest` earlier dead letters that were only counted), or only count it."""

    send: bool
    digest: int


class AlertWindowRepository:
    """Alert windows within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def decide(self, fingerprint: str, job_id: str, window_opened_after: datetime) -> AlertDecision:
        """Send when no window for `fingerprint` opened after `window_opened_after`; else count it."""
        absent = dialect_insert(self.session, AlertWindow).values(
            fingerprint=fingerprint, opened_at=NEVER, suppressed=0, sample_job_id=job_id
        )
        await self.session.exec(absent.on_conflict_do_nothing())
        query = select(AlertWindow).where(AlertWindow.fingerprint == fingerprint).with_for_update()
        window = (await self.session.exec(query.execution_options(populate_existing=True))).one()
        if window.opened_at <= window_opened_after:
            return AlertDecision(send=True, digest=window.suppressed)
        window.suppressed += 1
        window.sample_job_id = job_id
        self.session.add(window)
        return AlertDecision(send=False, digest=0)

    async def opened(self, fingerprint: str, at: datetime, digest_sent: int) -> None:
        """A window starts at `at` with the alert just sent; its digest is no longer owed."""
        left = col(AlertWindow.suppressed) - digest_sent
        await self.session.exec(
            sa.update(AlertWindow)
            .where(col(AlertWindow.fingerprint) == fingerprint)
            .values(opened_at=at, suppressed=sa.case((left < 0, 0), else_=left))
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

"""Reads and writes of the dead-letter queue."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.store.models import DeadLetter
from redrive.store.upsert import dialect_insert


@dataclass(frozen=True)
class DeadLetterFilter:
    """What a dead-letter listing is narrowed to (always one tenant)."""

    app_id: str
    type: str | None = None
    reason: str | None = None
    pending: bool | None = None


class DeadLetterRepository:
    """Dead-letter rows within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, entry: DeadLetter) -> DeadLetter:
        """Store `entry` once per (job, run): a repeated insert returns the first row."""
        statement = dialect_insert(self.session, DeadLetter).values(**entry.model_dump())
        await self.session.exec(statement.on_conflict_do_nothing())
        query = select(DeadLetter).where(
            DeadLetter.original_job_id == entry.original_job_id, DeadLetter.run_id == entry.run_id
        )
        return (await self.session.exec(query.execution_options(populate_existing=True))).one()

    async def get(self, app_id: str, entry_id: uuid.UUID) -> DeadLetter | None:
        """The tenant's entry, or None."""
        entry = await self.session.get(DeadLetter, entry_id)
        return entry if entry is not None and entry.app_id == app_id else None

    async def pending_for_job(self, app_id: str, job_id: str, run_id: str) -> DeadLetter | None:
        """The unreplayed entry of the job's run, if any."""
        query = select(DeadLetter).where(
            DeadLetter.app_id == app_id,
            DeadLetter.original_job_id == job_id,
            DeadLetter.run_id == run_id,
            col(DeadLetter.replayed_at).is_(None),
        )
        return (await self.session.exec(query)).first()

    async def search(self, where: DeadLetterFilter, limit: int) -> list[DeadLetter]:
        """Newest first."""
        query = select(DeadLetter).where(DeadLetter.app_id == where.app_id)
        if where.type is not None:
            query = query.where(DeadLetter.type == where.type)
        if where.reason is not None:
            query = query.where(DeadLetter.error_reason == where.reason)
        if where.pending is not None:
            replayed = col(DeadLetter.replayed_at)
            query = query.where(replayed.is_(None) if where.pending else replayed.is_not(None))
        query = query.order_by(col(DeadLetter.dlq_at).desc(), col(DeadLetter.id)).limit(limit)
        return list((await self.session.exec(query)).all())

    async def list_pending(self, app_id: str, type: str | None = None, limit: int = 50) -> list[DeadLetter]:
        """Entries not replayed yet."""
        return await self.search(DeadLetterFilter(app_id, type=type, pending=True), limit)

    async def mark_replayed(
        self, entry_id: uuid.UUID, at: datetime, request_id: str | None, user_id: str | None
    ) -> bool:
        """Stamp `replayed_at` once; False when it was already replayed."""
        result = await self.session.exec(
            sa.update(DeadLetter)
            .where(col(DeadLetter.id) == entry_id, col(DeadLetter.replayed_at).is_(None))
            .values(replayed_at=at, request_id=request_id, user_id=user_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def purge(self, replayed_before: datetime) -> int:
        """Delete entries replayed before `replayed_before`; the number deleted."""
        result = await self.session.exec(
            sa.delete(DeadLetter).where(col(DeadLetter.replayed_at) < replayed_before)
        )
        return int(getattr(result, "rowcount", 0))

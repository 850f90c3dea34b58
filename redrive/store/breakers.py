"""Circuit-breaker rows: a breaker's state, the attempts in its window, and the jobs it holds.

The state is written only by the breaker's own workflow (one per breaker, so one actor); the
attempts by the stage activities; the held jobs by the stage activities and the job workflows that
a breaker stops, and removed by the breaker's workflow as it releases them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from redrive.breaker_policy import BreakerRef
from redrive.store.models import (
    BREAKER_ATTEMPTS,
    BREAKER_WAITERS,
    BREAKERS,
    JOBS,
    RETRYING_ONLY,
    BreakerState,
    BreakerWaiter,
)
from redrive.store.upsert import dialect_insert

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)
PAUSED, WAITING = "paused", "waiting"
"""How a held job waits: its stage's activity paused in Temporal, or its workflow on a signal."""


@dataclass(frozen=True)
class Figures:
    """A breaker's attempts and failed attempts in its window."""

    attempts: int
    failures: int


def retrying_at(job_type: str, stage: str) -> Select[str, dict[str, Any]]:
    """The id and payload of every job of `job_type` waiting for a retry of `stage`, in any tenant:
    the ones an opening breaker pauses, through the partial index on `RETRYING_ONLY`."""
    return select(JOBS.c.id, JOBS.c.payload).where(
        JOBS.c.type == job_type, JOBS.c.stage == stage, RETRYING_ONLY
    )


def _of(table: sa.Table, ref: BreakerRef) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.job_type == ref.job_type, table.c.stage == ref.stage, table.c.key == ref.key)


class BreakerStore:
    """Breaker rows within the caller's session (and its transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def state(self, ref: BreakerRef) -> BreakerState | None:
        """The breaker's row; None for a breaker that never opened (closed)."""
        return await self.session.get(
            BreakerState, (ref.job_type, ref.stage, ref.key), populate_existing=True
        )

    async def states(self, job_type: str | None = None) -> list[BreakerState]:
        """Every breaker that has a row (of `job_type`, when given)."""
        query = select(BreakerState)
        if job_type is not None:
            query = query.where(BREAKERS.c.job_type == job_type)
        return list((await self.session.exec(query.order_by(BREAKERS.c.job_type, BREAKERS.c.stage))).all())

    async def set_state(
        self,
        ref: BreakerRef,
        state: str,
        *,
        at: datetime,
        reason: str,
        actor: str,
        manual: bool = False,
        cool_down: timedelta = timedelta(0),
        probe_job_id: str | None = None,
    ) -> None:
        """Write the breaker's state (its workflow is the only writer)."""
        values = {
            "state": state,
            "since": at,
            "reason": reason[:1000],
            "actor": actor[:128],
            "manual": manual,
            "cool_down_seconds": cool_down.total_seconds(),
            "probe_job_id": probe_job_id,
        }
        insert = dialect_insert(self.session, BREAKERS).values(
            job_type=ref.job_type, stage=ref.stage, key=ref.key, **values
        )
        await self.session.exec(
            insert.on_conflict_do_update(index_elements=["job_type", "stage", "key"], set_=values)
        )

    async def set_probe(self, ref: BreakerRef, job_id: str | None) -> None:
        """Name the half-open breaker's probe (None: the next attempt to start takes it)."""
        await self.session.exec(sa.update(BREAKERS).where(_of(BREAKERS, ref)).values(probe_job_id=job_id))

    async def claim_probe(self, ref: BreakerRef, job_id: str) -> bool:
        """Whether `job_id`'s attempt is the half-open breaker's probe: it is named so, or no probe
        was named and it is the first to ask (one statement, so two attempts never both win)."""
        claimed = await self.session.exec(
            sa.update(BREAKERS)
            .where(
                _of(BREAKERS, ref),
                BREAKERS.c.state == HALF_OPEN,
                sa.or_(BREAKERS.c.probe_job_id.is_(None), BREAKERS.c.probe_job_id == job_id),
            )
            .values(probe_job_id=job_id)
        )
        return bool(getattr(claimed, "rowcount", 0))

    async def record_attempt(self, ref: BreakerRef, job_id: str, *, failed: bool, at: datetime) -> None:
        """Count one attempt of the breaker's stage."""
        await self.session.exec(
            sa.insert(BREAKER_ATTEMPTS).values(
                job_type=ref.job_type, stage=ref.stage, key=ref.key, job_id=job_id, failed=failed, at=at
            )
        )

    async def figures(self, ref: BreakerRef, since: datetime) -> Figures:
        """The attempts and failures counted since `since`."""
        row = (
            await self.session.exec(
                select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((BREAKER_ATTEMPTS.c.failed, 1), else_=0)), 0),
                ).where(_of(BREAKER_ATTEMPTS, ref), BREAKER_ATTEMPTS.c.at >= since)
            )
        ).one()
        return Figures(attempts=int(row[0]), failures=int(row[1]))

    async def forget_attempts(self, ref: BreakerRef, before: datetime) -> None:
        """Drop the attempts older than the window (the index keeps this a range delete)."""
        await self.session.exec(
            sa.delete(BREAKER_ATTEMPTS).where(_of(BREAKER_ATTEMPTS, ref), BREAKER_ATTEMPTS.c.at < before)
        )

    async def hold(self, ref: BreakerRef, job_id: str, how: str, at: datetime) -> None:
        """Record that the breaker holds `job_id` (again: the first `since` stays)."""
        insert = dialect_insert(self.session, BREAKER_WAITERS).values(
            job_id=job_id, job_type=ref.job_type, stage=ref.stage, key=ref.key, how=how, since=at
        )
        await self.session.exec(
            insert.on_conflict_do_update(
                index_elements=["job_id"],
                set_={"job_type": ref.job_type, "stage": ref.stage, "key": ref.key, "how": how},
            )
        )

    async def waiters(self, ref: BreakerRef, limit: int) -> list[BreakerWaiter]:
        """The jobs the breaker holds, longest-held first."""
        query = (
            select(BreakerWaiter)
            .where(_of(BREAKER_WAITERS, ref))
            .order_by(BREAKER_WAITERS.c.since, BREAKER_WAITERS.c.job_id)
            .limit(limit)
        )
        return list((await self.session.exec(query)).all())

    async def waiting(self, ref: BreakerRef) -> int:
        """How many jobs the breaker holds."""
        count = await self.session.scalar(
            select(sa.func.count()).select_from(BREAKER_WAITERS).where(_of(BREAKER_WAITERS, ref))
        )
        return int(count or 0)

    async def holding(self, job_id: str) -> BreakerWaiter | None:
        """The hold on `job_id`, if a breaker holds it."""
        return await self.session.get(BreakerWaiter, job_id, populate_existing=True)

    async def release(self, job_id: str) -> None:
        """The breaker no longer holds `job_id`."""
        await self.session.exec(sa.delete(BREAKER_WAITERS).where(BREAKER_WAITERS.c.job_id == job_id))

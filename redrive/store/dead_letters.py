"""Reads and writes of the dead-letter queue, each scoped to one tenant (row-level security on
PostgreSQL, explicit filters everywhere)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
import sqlalchemy.orm
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.fingerprints import fingerprint
from redrive.status import JobStatus
from redrive.store.models import JOBS, PENDING_GROUPS, DeadLetter
from redrive.store.tenancy import ALL_TENANTS, scope_to
from redrive.store.types import UTCDateTime
from redrive.store.upsert import dialect_insert


@dataclass(frozen=True)
class DeadLetterFilter:
    """What a dead-letter listing or bulk replay is narrowed to (always one tenant)."""

    app_id: str
    type: str | None = None
    reason: str | None = None
    pending: bool | None = None
    stage: str | None = None
    fingerprint: str | None = None
    dlq_before: datetime | None = None
    dlq_after: datetime | None = None


@dataclass(frozen=True)
class DeadLetterGroup:
    """Pending dead letters that failed the same way."""

    fingerprint: str
    type: str
    stage: str
    error_type: str
    error_reason: str
    count: int
    first_seen: datetime
    last_seen: datetime
    sample_id: uuid.UUID
    sample_message: str


class DeadLetterRepository:
    """Dead-letter rows within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, entry: DeadLetter) -> DeadLetter:
        """Store `entry` once per (job, run): a repeated insert returns the first row.

        Fills in the fingerprint and, when the job died before in another run, the replay chain."""
        await scope_to(self.session, entry.app_id)
        values = entry.model_dump()
        values["fingerprint"] = entry.fingerprint or fingerprint(
            entry.type, entry.stage, entry.error_type, entry.error_message
        )
        previous = await self._previous(entry)
        if previous is not None:
            values["replay_of"] = previous.id
            values["replay_count"] = previous.replay_count + (previous.replayed_at is not None)
        statement = dialect_insert(self.session, DeadLetter).values(**values)
        await self.session.exec(statement.on_conflict_do_nothing())
        query = select(DeadLetter).where(
            DeadLetter.original_job_id == entry.original_job_id, DeadLetter.run_id == entry.run_id
        )
        return (await self.session.exec(query.execution_options(populate_existing=True))).one()

    async def _previous(self, entry: DeadLetter) -> DeadLetter | None:
        query = (
            select(DeadLetter)
            .where(DeadLetter.original_job_id == entry.original_job_id, DeadLetter.run_id != entry.run_id)
            .order_by(col(DeadLetter.dlq_at).desc())
            .limit(1)
        )
        return (await self.session.exec(query)).first()

    async def get(self, app_id: str, entry_id: uuid.UUID) -> DeadLetter | None:
        """The tenant's entry (any tenant's for `ALL_TENANTS`), or None."""
        await scope_to(self.session, app_id)
        entry = await self.session.get(DeadLetter, entry_id, populate_existing=True)
        return entry if entry is not None and app_id in (entry.app_id, ALL_TENANTS) else None

    async def get_many(self, app_id: str, entry_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, DeadLetter]:
        """The tenant's entries among `entry_ids`, by id (unknown ones and other tenants' left out),
        for a campaign step: without their error histories and payloads, which a replay does not
        read (decoding 250 of them held the worker for a tenth of a second); reading one raises."""
        await scope_to(self.session, app_id)
        query = (
            select(DeadLetter)
            .where(col(DeadLetter.id).in_(entry_ids), DeadLetter.app_id == app_id)
            .options(
                *(
                    sqlalchemy.orm.defer(cast(_Attribute, column), raiseload=True)
                    for column in (DeadLetter.error_history, DeadLetter.payload)
                )
            )
        )
        found = await self.session.exec(query.execution_options(populate_existing=True))
        return {entry.id: entry for entry in found}

    async def still_held(
        self, app_id: str, entry_ids: Sequence[uuid.UUID], claimed_after: datetime
    ) -> set[uuid.UUID]:
        """Of `entry_ids`, those not replayed whose job's dead run a retry still holds: claimed
        (queued in that run) after `claimed_after` and not yet recorded."""
        await scope_to(self.session, app_id)
        query = (
            select(col(DeadLetter.id))
            .join(JOBS, JOBS.c.id == col(DeadLetter.original_job_id))
            .where(
                col(DeadLetter.id).in_(entry_ids),
                col(DeadLetter.app_id) == app_id,
                col(DeadLetter.replayed_at).is_(None),
                JOBS.c.run_id == col(DeadLetter.run_id),
                JOBS.c.status == JobStatus.QUEUED.value,
                JOBS.c.updated_at >= claimed_after,
            )
        )
        return set((await self.session.exec(query)).all())

    async def pending_for_job(self, app_id: str, job_id: str, run_id: str) -> DeadLetter | None:
        """The unreplayed entry of the job's run, if any."""
        await scope_to(self.session, app_id)
        query = select(DeadLetter).where(
            DeadLetter.app_id == app_id,
            DeadLetter.original_job_id == job_id,
            DeadLetter.run_id == run_id,
            col(DeadLetter.replayed_at).is_(None),
        )
        return (await self.session.exec(query)).first()

    async def for_job(self, app_id: str, job_id: str) -> list[DeadLetter]:
        """The job's entries, oldest first: its trips through the queue (the replay chain)."""
        await scope_to(self.session, app_id)
        query = select(DeadLetter).where(DeadLetter.app_id == app_id, DeadLetter.original_job_id == job_id)
        return list((await self.session.exec(query.order_by(col(DeadLetter.dlq_at)))).all())

    async def search(
        self, where: DeadLetterFilter, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> list[DeadLetter]:
        """Newest first, `limit` rows after the keyset position `after` (dlq_at, id)."""
        await scope_to(self.session, where.app_id)
        query = select(DeadLetter).where(*_conditions(where), *_after(after))
        return list((await self.session.exec(query.order_by(*_NEWEST_FIRST).limit(limit))).all())

    async def search_positions(
        self, where: DeadLetterFilter, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> list[tuple[uuid.UUID, str, datetime]]:
        """Like `search`, each entry as (id, job id, dlq_at) only: a replay campaign's page, without
        reading 500 error histories and payloads (measured: 0.3 s of the worker's CPU a page)."""
        await scope_to(self.session, where.app_id)
        d = DeadLetter
        query = select(col(d.id), col(d.original_job_id), col(d.dlq_at)).where(
            *_conditions(where), *_after(after)
        )
        rows = (await self.session.exec(query.order_by(*_NEWEST_FIRST).limit(limit))).all()
        return [(entry_id, job_id, dlq_at) for entry_id, job_id, dlq_at in rows]

    async def search_any(self, where: DeadLetterFilter, limit: int) -> list[DeadLetter]:
        """Like `search`, across every tenant (`where.app_id` is ignored): for maintenance only."""
        await scope_to(self.session, ALL_TENANTS)
        query = select(DeadLetter).where(*_conditions(where)[1:])
        return list(
            (await self.session.exec(query.order_by(col(DeadLetter.dlq_at).desc()).limit(limit))).all()
        )

    async def count(self, where: DeadLetterFilter) -> int:
        """How many entries match."""
        await scope_to(self.session, where.app_id)
        query = select(sa.func.count()).select_from(DeadLetter).where(*_conditions(where))
        return int((await self.session.exec(query)).one())

    async def list_pending(self, app_id: str, type: str | None = None, limit: int = 50) -> list[DeadLetter]:
        """Entries not replayed yet."""
        return await self.search(DeadLetterFilter(app_id, type=type, pending=True), limit)

    async def groups(self, where: DeadLetterFilter, limit: int) -> list[DeadLetterGroup]:
        """Entries grouped by fingerprint, largest group first. Pending entries (the default), by
        tenant and optionally type, come from the kept counts (`dead_letter_groups`) with each listed
        group's first, last and latest entry found through the (app_id, fingerprint, dlq_at) index;
        other filters group the matching entries."""
        await scope_to(self.session, where.app_id)
        narrowed = (where.reason, where.stage, where.fingerprint, where.dlq_before, where.dlq_after)
        if where.pending is True and all(value is None for value in narrowed):
            return await self._kept_groups(where, limit)
        d = DeadLetter
        query = (
            sa.select(
                col(d.fingerprint),
                col(d.type),
                col(d.stage),
                col(d.error_type),
                sa.func.max(col(d.error_reason)),
                sa.func.count(),
                sa.func.min(col(d.dlq_at)),
                sa.func.max(col(d.dlq_at)),
                sa.func.max(sa.cast(col(d.id), sa.String)),
                sa.func.max(col(d.error_message)),
            )
            .where(*_conditions(where))
            .group_by(col(d.fingerprint), col(d.type), col(d.stage), col(d.error_type))
            .order_by(sa.func.count().desc(), sa.func.max(d.dlq_at).desc())
            .limit(limit)
        )
        rows = (await (await self.session.connection()).execute(query)).all()
        return [
            _group(key, type_, stage, error_type, reason, count, first, last, sample, message)
            for key, type_, stage, error_type, reason, count, first, last, sample, message in rows
        ]

    async def _kept_groups(self, where: DeadLetterFilter, limit: int) -> list[DeadLetterGroup]:
        g, d = PENDING_GROUPS, DeadLetter
        pending_of_group = sa.and_(
            col(d.app_id) == g.c.app_id, col(d.fingerprint) == g.c.fingerprint, col(d.replayed_at).is_(None)
        )
        first = sa.select(sa.func.min(col(d.dlq_at))).where(pending_of_group).scalar_subquery()
        last = sa.select(sa.func.max(col(d.dlq_at))).where(pending_of_group).scalar_subquery().label("last")
        latest = (
            sa.select(col(d.id))
            .where(pending_of_group)
            .order_by(col(d.dlq_at).desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            sa.select(g.c.fingerprint, g.c.type, g.c.stage, g.c.error_type, g.c.pending, first, last, latest)
            .where(g.c.app_id == where.app_id, g.c.pending > 0)
            .order_by(g.c.pending.desc(), sa.desc("last"))
            .limit(limit)
        )
        if where.type is not None:
            query = query.where(g.c.type == where.type)
        connection = await self.session.connection()
        rows = (await connection.execute(query)).all()
        samples_query = sa.select(col(d.id), col(d.error_reason), col(d.error_message)).where(
            col(d.id).in_([row[7] for row in rows])
        )
        samples = {
            entry_id: (reason, message)
            for entry_id, reason, message in await connection.execute(samples_query)
        }
        return [
            _group(
                key,
                type_,
                stage,
                error_type,
                samples[sample][0],
                count,
                first,
                last,
                sample,
                samples[sample][1],
            )
            for key, type_, stage, error_type, count, first, last, sample in rows
        ]

    async def mark_replayed(
        self, app_id: str, entry_id: uuid.UUID, at: datetime, request_id: str | None, user_id: str | None
    ) -> bool:
        """Stamp `replayed_at` once; False when it was already replayed."""
        return await self.mark_many_replayed(app_id, [entry_id], at, request_id, user_id) == 1

    async def mark_many_replayed(
        self,
        app_id: str,
        entry_ids: Sequence[uuid.UUID],
        at: datetime,
        request_id: str | None,
        user_id: str | None,
    ) -> int:
        """`mark_replayed` for each of `entry_ids`, in one statement; how many were stamped."""
        await scope_to(self.session, app_id)
        result = await self.session.exec(
            sa.update(DeadLetter)
            .where(
                col(DeadLetter.id).in_(entry_ids),
                col(DeadLetter.app_id) == app_id,
                col(DeadLetter.replayed_at).is_(None),
            )
            .values(replayed_at=at, request_id=request_id, user_id=user_id)
        )
        return int(getattr(result, "rowcount", 0))

    async def replayed_with(self, app_id: str, stamps: Sequence[str]) -> list[DeadLetter]:
        """The tenant's entries stamped with one of `stamps` (a campaign's, by outcome)."""
        await scope_to(self.session, app_id)
        query = select(DeadLetter).where(
            col(DeadLetter.request_id).in_(stamps), col(DeadLetter.app_id) == app_id
        )
        return list((await self.session.exec(query)).all())

    async def fates(self, app_id: str, stamps: Sequence[str]) -> tuple[int, int, int]:
        """Of the tenant's entries stamped with one of `stamps`: how many, how many of their jobs
        completed in a later run, how many died again (have an entry that names them `replay_of`)."""
        await scope_to(self.session, app_id)
        d, again = DeadLetter, sa.orm.aliased(DeadLetter)
        stamped = sa.and_(col(d.request_id).in_(stamps), col(d.app_id) == app_id)
        completed = (
            sa.select(sa.func.count())
            .select_from(JOBS)
            .where(
                JOBS.c.id == col(d.original_job_id),
                JOBS.c.run_id != col(d.run_id),
                JOBS.c.status == JobStatus.COMPLETE.value,
            )
            .correlate(d)
            .scalar_subquery()
        )
        died = (
            sa.select(sa.func.count())
            .select_from(again)
            .where(col(again.original_job_id) == col(d.original_job_id), col(again.replay_of) == col(d.id))
            .correlate(d)
            .scalar_subquery()
        )
        each = sa.select(completed.label("completed"), died.label("died")).where(stamped).subquery()
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(each.c.completed), 0),
            sa.func.coalesce(sa.func.sum(each.c.died), 0),
        )
        row = (await (await self.session.connection()).execute(query)).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def mark_notified(self, entry_id: uuid.UUID, at: datetime) -> bool:
        """Stamp `notified_at` once; False when a notification was already sent for it."""
        await scope_to(self.session, ALL_TENANTS)
        result = await self.session.exec(
            sa.update(DeadLetter)
            .where(col(DeadLetter.id) == entry_id, col(DeadLetter.notified_at).is_(None))
            .values(notified_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def archive(self, dlq_before: datetime, at: datetime) -> Sequence[tuple[str, str]]:
        """Archive pending entries that died before `dlq_before`; their (job id, run id) pairs."""
        await scope_to(self.session, ALL_TENANTS)
        due = (
            col(DeadLetter.dlq_at) < dlq_before,
            col(DeadLetter.replayed_at).is_(None),
            col(DeadLetter.archived_at).is_(None),
        )
        query = select(DeadLetter.original_job_id, DeadLetter.run_id).where(*due)
        archived = list((await self.session.exec(query)).all())
        await self.session.exec(sa.update(DeadLetter).where(*due).values(archived_at=at))
        return archived

    async def purge(self, replayed_before: datetime) -> int:
        """Delete entries replayed before `replayed_before`; the number deleted."""
        await scope_to(self.session, ALL_TENANTS)
        result = await self.session.exec(
            sa.delete(DeadLetter).where(col(DeadLetter.replayed_at) < replayed_before)
        )
        return int(getattr(result, "rowcount", 0))

    async def pending_counts(self) -> list[tuple[str, str, int]]:
        """(job type, reason, count) of entries not replayed yet, every tenant: served by the
        pending-by-type index, so a metrics scrape can afford it."""
        await scope_to(self.session, ALL_TENANTS)
        d = DeadLetter
        query = (
            sa.select(col(d.type), col(d.error_reason), sa.func.count())
            .where(col(d.replayed_at).is_(None))
            .group_by(col(d.type), col(d.error_reason))
        )
        rows = (await (await self.session.connection()).execute(query)).all()
        return [(str(job_type), str(reason), int(count)) for job_type, reason, count in rows]

    async def known_runs(self, run_ids: Sequence[str]) -> set[str]:
        """Which of `run_ids` already have an entry (any tenant)."""
        await scope_to(self.session, ALL_TENANTS)
        query = select(DeadLetter.run_id).where(col(DeadLetter.run_id).in_(run_ids))
        return set((await self.session.exec(query)).all())


def _conditions(where: DeadLetterFilter) -> list[sa.ColumnElement[bool]]:
    """The filter as SQL; the tenant's condition comes first."""
    d = DeadLetter
    conditions = [col(d.app_id) == where.app_id]
    equal = (
        (d.type, where.type),
        (d.error_reason, where.reason),
        (d.stage, where.stage),
        (d.fingerprint, where.fingerprint),
    )
    conditions += [col(column) == value for column, value in equal if value is not None]
    if where.pending is not None:
        replayed = col(d.replayed_at)
        conditions.append(replayed.is_(None) if where.pending else replayed.is_not(None))
    if where.dlq_before is not None:
        conditions.append(col(d.dlq_at) < where.dlq_before)
    if where.dlq_after is not None:
        conditions.append(col(d.dlq_at) >= where.dlq_after)
    return conditions


def _group(
    key: str,
    job_type: str,
    stage: str,
    error_type: str,
    reason: str,
    count: int,
    first: datetime,
    last: datetime,
    sample: object,
    message: str,
) -> DeadLetterGroup:
    return DeadLetterGroup(
        fingerprint=key,
        type=job_type,
        stage=stage,
        error_type=error_type,
        error_reason=reason,
        count=int(count),
        first_seen=_aware(first),
        last_seen=_aware(last),
        sample_id=uuid.UUID(str(sample)),
        sample_message=message,
    )


def _aware(value: datetime) -> datetime:
    # Aggregates bypass the column type, so SQLite hands back naive UTC (or a string).
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_Attribute = sqlalchemy.orm.QueryableAttribute[Any]
"""What a model's column is at run time (its annotation says the value's type)."""
_NEWEST_FIRST = (col(DeadLetter.dlq_at).desc(), col(DeadLetter.id).desc())


def _after(after: tuple[datetime, uuid.UUID] | None) -> list[sa.ColumnElement[bool]]:
    """The keyset condition of a page after the position (dlq_at, id), newest first."""
    if after is None:
        return []
    at, entry_id = after
    position = sa.tuple_(col(DeadLetter.dlq_at), col(DeadLetter.id))
    return [position < sa.tuple_(sa.literal(at, UTCDateTime), sa.literal(entry_id, sa.Uuid))]

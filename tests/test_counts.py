"""The per-status counts kept by triggers equal counting the rows, after concurrent writes through
every path that changes a job's status (projection batches, dead letters, retries' claims, archival,
deletion), on SQLite and PostgreSQL; and listings read them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.operations.retry import CLAIM_LEASE
from redrive.status import JobStatus
from redrive.store import DeadLetter, Job, create_engine, session_factory
from redrive.store.archival import ArchiveRule
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.jobs import JobFilter, JobRepository
from redrive.store.models import JOB_COUNTS, JOBS
from redrive.store.projection import GroupCommit, ProjectionWrites, statements
from redrive.store.types import utcnow

Key = tuple[str, str, str]


async def _life(projection: GroupCommit, sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    """One job: created, started, then dead (and claimed by a retry), complete, cancelled or left running."""
    now = utcnow()
    job_id, run_id = f"job-{uuid.uuid4().hex}", f"run-{n}"
    tenant, kind = ("a", "demo") if n % 3 else ("b", "webhook")
    job = Job(id=job_id, tenant_id=tenant, type=kind, status="queued", run_id=run_id, created_at=now)
    await projection.write(statements.job_created(job))
    start = statements.StageStart(job_id, tenant, kind, run_id, {}, "prepare", 0, 1, 4, now)
    await projection.write(statements.stage_started(start))
    if n % 4 == 0:
        dead = job.model_copy(update={"status": JobStatus.DEAD_LETTER.value, "updated_at": now})
        async with sessions() as session, session.begin():
            await ProjectionWrites(session).terminal(dead, stage="prepare")
        if n % 8 == 0:
            async with sessions() as session, session.begin():
                assert await ProjectionWrites(session).claim_retry(job_id, run_id, now)
    elif n % 4 == 1:
        await projection.write(statements.status_changed(job_id, run_id, JobStatus.COMPLETE, now, "prepare"))
    elif n % 4 == 2:
        await projection.write(statements.status_changed(job_id, run_id, JobStatus.CANCELLED, now))


async def _kept(connection: AsyncConnection) -> dict[Key, int]:
    columns = (JOB_COUNTS.c.tenant_id, JOB_COUNTS.c.type, JOB_COUNTS.c.status)
    rows = await connection.execute(sa.select(*columns, sa.func.sum(JOB_COUNTS.c.n)).group_by(*columns))
    return {(tenant, kind, status): int(total) for tenant, kind, status, total in rows if total}


async def _counted(connection: AsyncConnection) -> dict[Key, int]:
    columns = (JOBS.c.tenant_id, JOBS.c.type, JOBS.c.status)
    rows = await connection.execute(sa.select(*columns, sa.func.count()).group_by(*columns))
    return {(tenant, kind, status): int(total) for tenant, kind, status, total in rows}


async def test_counts_equal_the_rows_after_concurrent_writes(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with GroupCommit(engine) as projection:
            await asyncio.gather(*(_life(projection, sessions, n) for n in range(240)))
        async with sessions() as session, session.begin():
            dead = sa.select(JOBS.c.id, JOBS.c.run_id).where(JOBS.c.status == "dead_letter")
            runs = (await (await session.connection()).execute(dead)).all()[:5]
            await ProjectionWrites(session).archive([(job, run) for job, run in runs], utcnow())
            await session.exec(sa.delete(JOBS).where(JOBS.c.status == "cancelled", JOBS.c.tenant_id == "b"))
        async with engine.connect() as connection:
            kept, counted = await _kept(connection), await _counted(connection)
        assert kept == counted
        statuses = {status for _tenant, _kind, status in kept}
        assert statuses >= {"queued", "complete", "dead_letter", "archived", "running", "cancelled"}

        rule = ArchiveRule.after(timedelta(days=7))
        of_a = {status: total for (tenant, _kind, status), total in counted.items() if tenant == "a"}
        async with sessions() as session:  # a listing reads them; dead past the age read as archived
            repository = JobRepository(session)
            assert await repository.counts(JobFilter("a", archive=rule, include_archived=True)) == of_a
            overdue = utcnow() - timedelta(days=8)
            dead_of_a = sa.and_(JOBS.c.status == "dead_letter", JOBS.c.tenant_id == "a")
            await session.exec(sa.update(JOBS).where(dead_of_a).values(finished_at=overdue))
            aged = await repository.counts(JobFilter("a", archive=rule, include_archived=True))
            assert "dead_letter" not in aged
            assert aged["archived"] == of_a["archived"] + of_a["dead_letter"]
            assert "archived" not in await repository.counts(JobFilter("a", archive=rule))
    finally:
        await engine.dispose()


def _entry(job_id: str, tenant: str, error_type: str, at: datetime) -> DeadLetter:
    return DeadLetter(
        original_job_id=job_id,
        run_id="run-1",
        app_id=tenant,
        type="webhook",
        stage="deliver",
        payload={},
        error_reason="MaxRetries",
        error_type=error_type,
        error_message=f"failed {job_id}",
        attempts=1,
        error_history=[],
        dlq_at=at,
    )


async def test_pending_groups_equal_grouping_the_entries(database_url: str) -> None:
    """The groups listing read from the kept counts equals grouping the pending entries, after
    inserts, replays and purges."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    errors = ["ServiceUnavailable", "ValidationError", "Timeout"]
    try:
        async with sessions() as session, session.begin():
            repository = DeadLetterRepository(session)
            entries = [
                await repository.insert(
                    _entry(f"job-{n}", "a" if n % 5 else "b", errors[n % 3], utcnow() - timedelta(minutes=n))
                )
                for n in range(40)
            ]
            for entry in entries[::4]:
                assert await repository.mark_replayed(
                    entry.app_id, entry.id, utcnow() - timedelta(days=40), None, None
                )
            assert await repository.purge(utcnow() - timedelta(days=30)) == 10
        async with sessions() as session:
            repository = DeadLetterRepository(session)
            kept = await repository.groups(DeadLetterFilter("a", pending=True), 10)
            scanned = await repository.groups(
                DeadLetterFilter("a", pending=True, dlq_after=utcnow() - timedelta(days=1)), 10
            )
    finally:
        await engine.dispose()
    assert [(g.fingerprint, g.count, g.first_seen, g.last_seen) for g in kept] == [
        (g.fingerprint, g.count, g.first_seen, g.last_seen) for g in scanned
    ]
    assert sum(group.count for group in kept) == 24
    latest = {}  # the sample is the group's latest pending entry
    for entry in sorted(entries, key=lambda entry: entry.dlq_at):
        if entry.app_id == "a" and entry not in entries[::4]:
            latest[entry.fingerprint] = entry.id
    assert {group.fingerprint: group.sample_id for group in kept} == latest


async def test_racing_batch_claims_take_each_dead_run_once(database_url: str) -> None:
    """Replay campaigns claim a step's dead runs in one statement: racing batches over the same jobs
    win each dead run once between them (a lapsed claim too), never a live or superseded run; a
    renewed claim does not lapse; a batch of stamps marks each entry once; the kept counts follow."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    now = utcnow()
    lapsed = now - CLAIM_LEASE - timedelta(seconds=1)
    kinds = ["dead_letter", "archived", "running", "queued-lapsed", "queued-fresh"]
    jobs = []
    for n in range(40):
        kind = kinds[n % 5]
        status = kind.split("-")[0]
        updated = lapsed - timedelta(seconds=1) if kind == "queued-lapsed" else now
        job = Job(id=f"job-{n}", tenant_id="a", type="demo", status=status, run_id="r1", created_at=now)
        jobs.append(job.model_copy(update={"updated_at": updated}))
    try:
        async with sessions() as session, session.begin():
            for job in jobs:
                await ProjectionWrites(session).add_if_absent(job)

        async def claim(runs: list[tuple[str, str]]) -> set[str]:
            async with sessions() as session, session.begin():
                return await ProjectionWrites(session).claim_many_retries(runs, utcnow(), lapsed)

        runs = [(job.id, job.run_id or "") for job in jobs]
        superseded = [(job.id, "r0") for job in jobs]
        won = await asyncio.gather(claim(runs), claim(runs[::-1]), claim(runs[10:] + superseded), claim(runs))
        claimed = [job_id for batch in won for job_id in batch]
        expected = {
            job.id
            for n, job in enumerate(jobs)
            if kinds[n % 5] in ("dead_letter", "archived", "queued-lapsed")
        }
        assert sorted(claimed) == sorted(expected)  # each once, none other
        # A claim its step keeps renewing is not taken over once the lease has passed; one left is.
        renewed, left = sorted(expected)[:2]
        async with sessions() as session, session.begin():
            both = JOBS.c.id.in_([renewed, left])
            await session.exec(sa.update(JOBS).where(both).values(updated_at=lapsed - timedelta(seconds=1)))
            await ProjectionWrites(session).renew_claims([(renewed, "r1")], utcnow())
        assert await claim([(renewed, "r1"), (left, "r1")]) == {left}
        async with engine.connect() as connection:
            assert await _kept(connection) == await _counted(connection)

        async with sessions() as session, session.begin():
            repository = DeadLetterRepository(session)
            entries = [
                await repository.insert(_entry(f"job-{n}", "a" if n % 2 else "b", "ValidationError", now))
                for n in range(6)
            ]
            ids = [entry.id for entry in entries]
            stamped = await repository.mark_many_replayed("a", ids, now, "campaign:c:reset", "op")
            again = await repository.mark_many_replayed("a", ids, now, "campaign:d:reset", "op")
            assert (stamped, again) == (3, 0)  # tenant a's three, once
            assert len(await repository.replayed_with("a", ["campaign:c:reset"])) == 3
    finally:
        await engine.dispose()

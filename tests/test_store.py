"""The migrations and the table models agree, on SQLite and PostgreSQL; repository writes are idempotent;
row-level security keeps tenants apart on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, col, select

from redrive.fingerprints import fingerprint
from redrive.status import JobStatus
from redrive.store import DeadLetter, Job, JobStage, create_engine, session_factory, upgrade
from redrive.store.breakers import retrying_at
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository
from redrive.store.models import JOBS
from redrive.store.projection import GroupCommit, statements
from redrive.store.types import utcnow


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migration_matches_models(database_url: str) -> None:
    """Autogenerate finds nothing to add: the hand-written migration is the models' schema."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_projection_batch_of_several_jobs(database_url: str) -> None:
    """One group-commit batch (each statement once, for every job's row) projects every job, and
    a late write still cannot revive a job that went to the dead-letter queue."""
    engine = create_engine(database_url)
    now = utcnow()
    jobs = ["job-a", "job-b", "job-c"]

    def started(job_id: str, stage: str, position: int) -> list[statements.Row]:
        start = statements.StageStart(job_id, "t", "demo", "run-1", {}, stage, position, 1, 4, now)
        return statements.stage_started(start)

    try:
        async with engine.begin() as connection:
            await statements.execute(connection, [row for job in jobs for row in started(job, "prepare", 0)])
        async with session_factory(engine)() as session, session.begin():
            await session.exec(sa.update(Job).where(col(Job.id) == "job-c").values(status="dead_letter"))
        async with engine.begin() as connection:
            rows = [
                row
                for job in jobs
                for row in statements.stage_finished(job, "prepare", now)
                + statements.status_changed(job, "run-1", JobStatus.COMPLETE, now, "prepare")
            ]
            await statements.execute(connection, rows + started("job-d", "prepare", 0))
        async with session_factory(engine)() as session:
            statuses = {job.id: job.status for job in (await session.exec(select(Job))).all()}
            stages = {(row.job_id, row.status) for row in (await session.exec(select(JobStage))).all()}
    finally:
        await engine.dispose()
    assert statuses == {"job-a": "complete", "job-b": "complete", "job-c": "dead_letter", "job-d": "running"}
    assert stages == {
        ("job-a", "complete"),
        ("job-b", "complete"),
        ("job-c", "complete"),
        ("job-d", "running"),
    }


async def test_group_commit_batches_concurrent_writes(database_url: str) -> None:
    """Writes that arrive within the linger window share one transaction, and each caller returns
    once its own write is committed."""
    engine = create_engine(database_url)
    commits: list[None] = []

    def committed(_connection: sa.Connection) -> None:
        commits.append(None)

    # On every engine: on a SQLite file the writer commits through an engine of its own.
    sa.event.listen(sa.Engine, "commit", committed)
    now = utcnow()
    try:
        async with GroupCommit(engine) as projection:

            def write(n: int) -> asyncio.Task[None]:
                start = statements.StageStart(f"job-{n}", "t", "demo", "run-1", {}, "prepare", 0, 1, 4, now)
                return asyncio.create_task(projection.write(statements.stage_started(start)))

            first = write(0)
            for _ in range(3):  # the writer task wakes up for the first write before the others come
                await asyncio.sleep(0)
            await asyncio.gather(first, *(write(n) for n in range(1, 5)))
        sa.event.remove(sa.Engine, "commit", committed)
        async with session_factory(engine)() as session:
            stored = (await session.exec(select(Job))).all()
    finally:
        if sa.event.contains(sa.Engine, "commit", committed):
            sa.event.remove(sa.Engine, "commit", committed)
        await engine.dispose()
    assert len(commits) == 1
    assert sorted(job.id for job in stored) == [f"job-{n}" for n in range(5)]


async def test_group_commit_on_sqlite_waits_for_a_session_writing_and_then_commits(tmp_path: Path) -> None:
    """On a SQLite file the writer has a connection of its own: while a session holds the write
    lock, a projection write waits (it does not fail, and does not block the event loop), then
    commits once the session has."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'redrive.db'}"
    await upgrade(url)
    engine = create_engine(url)
    now = utcnow()
    start = statements.StageStart("job-0", "t", "demo", "run-1", {}, "prepare", 0, 1, 4, now)
    try:
        async with GroupCommit(engine, linger=0) as projection, session_factory(engine)() as session:
            await session.exec(sa.update(JOBS).values(status="queued"))  # takes the write lock
            write = asyncio.create_task(projection.write(statements.stage_started(start)))
            await asyncio.sleep(0.5)  # the loop runs on meanwhile
            assert not write.done()
            await session.commit()
            await asyncio.wait_for(write, timeout=5)
        async with session_factory(engine)() as session:
            stored = (await session.exec(select(Job))).all()
    finally:
        await engine.dispose()
    assert [(job.id, job.status) for job in stored] == [("job-0", JobStatus.RUNNING.value)]


async def test_group_commit_survives_a_dropped_connection(postgres_url: str) -> None:
    """The writer holds one connection; when the server drops it, the write caught in that batch
    is retried on a new connection and committed, as are the writes after it."""
    engine = create_engine(postgres_url)
    now = utcnow()

    def started(n: int) -> list[statements.Row]:
        return statements.stage_started(
            statements.StageStart(f"job-{n}", "t", "demo", "r", {}, "prepare", 0, 1, 4, now)
        )

    others = sa.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        async with GroupCommit(engine, linger=0) as projection:
            await projection.write(started(0))
            async with engine.connect() as admin:
                assert (await admin.execute(others)).scalar_one() == 1  # the writer's connection
            await projection.write(started(1))
            await projection.write(started(2))
        async with session_factory(engine)() as session:
            stored = (await session.exec(select(Job))).all()
    finally:
        await engine.dispose()
    assert sorted(job.id for job in stored) == ["job-0", "job-1", "job-2"]


async def test_dead_letter_insert_is_idempotent_per_run(database_url: str) -> None:
    """Recording the same run twice keeps one row; replay is stamped once; purge removes it."""
    engine = create_engine(database_url)
    entry: dict[str, Any] = {
        "original_job_id": "job-1",
        "run_id": "run-1",
        "app_id": "a",
        "type": "demo",
        "stage": "process",
        "payload": {"n": 1},
        "error_reason": "MaxRetries",
        "error_type": "ServiceUnavailable",
        "error_message": "down",
        "attempts": 4,
        "error_history": [{"attempt": 1}],
    }
    try:
        async with session_factory(engine)() as session, session.begin():
            repository = DeadLetterRepository(session)
            first = await repository.insert(DeadLetter(**entry))
            second = await repository.insert(DeadLetter(**{**entry, "error_message": "other"}))
            assert second.id == first.id
            assert second.error_message == "down"
            assert [e.id for e in await repository.list_pending("a")] == [first.id]
            assert await repository.list_pending("b") == []
            assert await repository.get("b", first.id) is None
            now = utcnow()
            assert not await repository.mark_replayed("b", first.id, now, "req-0", "ops")
            assert await repository.mark_replayed("a", first.id, now, "req-1", "ops")
            assert not await repository.mark_replayed("a", first.id, now, "req-2", "ops")
            assert await repository.purge(replayed_before=now) == 0
            assert await repository.purge(replayed_before=utcnow()) == 1
            assert await repository.get("a", uuid.UUID(str(first.id))) is None
    finally:
        await engine.dispose()


def _entry(**overrides: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "original_job_id": "job-1",
        "run_id": "run-1",
        "app_id": "a",
        "type": "webhook",
        "stage": "deliver",
        "payload": {},
        "error_reason": "MaxRetries",
        "error_type": "ServiceUnavailable",
        "error_message": "HTTP 503 from https://x.example/a?id=1",
        "attempts": 4,
        "error_history": [],
    }
    return DeadLetter(**{**values, **overrides})


async def test_replay_chain_and_groups(database_url: str) -> None:
    """A job that dies again after a replay links to its previous entry; same failures share a group."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            repository = DeadLetterRepository(session)
            first = await repository.insert(_entry())
            assert (first.replay_of, first.replay_count) == (None, 0)
            assert await repository.mark_replayed("a", first.id, utcnow(), "r", "ops")
            second = await repository.insert(
                _entry(run_id="run-2", error_message="HTTP 503 from https://x.example/b?id=2")
            )
            assert (second.replay_of, second.replay_count) == (first.id, 1)
            assert second.fingerprint == first.fingerprint
            await repository.insert(_entry(original_job_id="job-2", error_type="ValidationError"))
            await repository.insert(_entry(original_job_id="job-3", app_id="b"))
            groups = await repository.groups(DeadLetterFilter("a"), 10)
            counts = [(g.error_type, g.count) for g in groups]
            assert counts == [("ServiceUnavailable", 2), ("ValidationError", 1)]
            assert groups[0].first_seen <= groups[0].last_seen
            pending = DeadLetterFilter("a", fingerprint=first.fingerprint, pending=True)
            assert [e.id for e in await repository.search(pending, 10)] == [second.id]
    finally:
        await engine.dispose()


async def test_upgrade_from_the_core_schema_keeps_rows(tmp_path: Path) -> None:
    """A database at revision 0001 with a dead letter upgrades to head and gains its fingerprint."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0001")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO dead_letters (id, original_job_id, run_id, app_id, type, stage, payload,"
                    " error_reason, error_type, error_message, attempts, error_history, dlq_at)"
                    " VALUES ('0123456789abcdef0123456789abcdef', 'job-1', 'run-1', 'a', 'demo', 'process',"
                    " '{}', 'MaxRetries', 'TemporaryFailure', 'failed 3 times', 4, '[]',"
                    " '2026-01-01 00:00:00')"
                )
            )
        await upgrade(url)
        async with session_factory(engine)() as session:
            (entry,) = await DeadLetterRepository(session).list_pending("a")
            assert entry.fingerprint == fingerprint("demo", "process", "TemporaryFailure", "failed 9 times")
            assert entry.replay_count == 0
    finally:
        await engine.dispose()


async def test_row_level_security_hides_other_tenants(postgres_url: str) -> None:
    """A non-superuser PostgreSQL connection scoped to tenant a reads none of b's rows, even by SELECT *."""
    engine = create_engine(postgres_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            repository = DeadLetterRepository(session)
            await repository.insert(_entry(app_id="a"))
            await repository.insert(_entry(app_id="b", original_job_id="job-b"))
        async with engine.connect() as connection:
            await connection.execute(sa.text("DROP ROLE IF EXISTS redrive_rls_probe"))
            await connection.execute(sa.text("CREATE ROLE redrive_rls_probe NOSUPERUSER NOBYPASSRLS"))
            await connection.execute(sa.text("GRANT SELECT, UPDATE ON dead_letters TO redrive_rls_probe"))
            await connection.commit()
            async with connection.begin():
                await connection.execute(sa.text("SET LOCAL ROLE redrive_rls_probe"))
                assert (await connection.execute(sa.text("SELECT * FROM dead_letters"))).all() == []
                await connection.execute(sa.text("SELECT set_config('redrive.tenant', 'a', true)"))
                rows = (await connection.execute(sa.text("SELECT app_id FROM dead_letters"))).all()
                assert [row.app_id for row in rows] == ["a"]
                updated = await connection.execute(sa.text("UPDATE dead_letters SET user_id = 'x'"))
                assert updated.rowcount == 1
            await connection.execute(sa.text("DROP OWNED BY redrive_rls_probe"))
            await connection.execute(sa.text("DROP ROLE redrive_rls_probe"))
            await connection.commit()
    finally:
        await engine.dispose()


async def test_an_index_finds_the_jobs_an_opening_breaker_pauses(database_url: str) -> None:
    """The breaker's query for the jobs waiting on a retry of its stage, across every tenant, is
    served by the partial index on `retrying` jobs, not a scan of the jobs table; and it returns
    exactly those jobs."""
    engine = create_engine(database_url)
    now = utcnow()
    query = retrying_at("demo", "process")
    try:
        async with engine.begin() as connection:
            rows = [
                Job(
                    id=job_id,
                    tenant_id=tenant,
                    type="demo",
                    status=status.value,
                    stage=stage,
                    created_at=now,
                    updated_at=now,
                ).model_dump()
                for job_id, tenant, stage, status in [
                    ("waiting-a", "a", "process", JobStatus.RETRYING),
                    ("waiting-b", "b", "process", JobStatus.RETRYING),
                    ("running", "a", "process", JobStatus.RUNNING),
                    ("elsewhere", "a", "finish", JobStatus.RETRYING),
                ]
            ]
            await connection.execute(sa.insert(JOBS), rows)
            assert sorted(job_id for job_id, _payload in (await connection.execute(query)).all()) == [
                "waiting-a",
                "waiting-b",
            ]
            sql = str(query.compile(connection.sync_connection, compile_kwargs={"literal_binds": True}))
            sqlite = connection.dialect.name == "sqlite"
            if not sqlite:  # so few rows that a scan would win on cost; ask whether the index can serve it
                await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            explained = await connection.exec_driver_sql(
                f"{'EXPLAIN QUERY PLAN' if sqlite else 'EXPLAIN'} {sql}"
            )
            plan = [row[-1] for row in explained.all()]  # the plan's text is the last column on both
        assert any("ix_jobs_retrying" in line for line in plan), plan
    finally:
        await engine.dispose()

"""The migration and the table models agree, on SQLite and PostgreSQL; repository writes are idempotent."""

from __future__ import annotations

import uuid
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from redrive.store import DeadLetter, create_engine, session_factory
from redrive.store.dead_letters import DeadLetterRepository
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
            assert await repository.mark_replayed(first.id, now, "req-1", "ops")
            assert not await repository.mark_replayed(first.id, now, "req-2", "ops")
            assert await repository.purge(replayed_before=now) == 0
            assert await repository.purge(replayed_before=utcnow()) == 1
            assert await repository.get("a", uuid.UUID(str(first.id))) is None
    finally:
        await engine.dispose()

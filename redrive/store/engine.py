"""The async engine and session factory: SQLite (`sqlite+aiosqlite`) or PostgreSQL (`postgresql+asyncpg`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for the lock; concurrent activities otherwise fail with 'locked'."""


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while activities write; busy_timeout queues writers instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`, with SQLite tuned for concurrent writers."""
    if url.startswith("sqlite"):
        # SQLite has one writer at a time. Several pooled connections would each hold the write lock
        # across awaits and time out on each other under load; one connection per process makes
        # writers queue in the pool instead (WAL still lets other processes read meanwhile). Seen
        # again with two (the projection writer holding one): under 1,000 failing jobs, sessions
        # waited on the other's lock and then over 10 s for the pool. (The projection's group commit
        # has a connection of its own, used synchronously on its own thread, so it never holds the
        # lock across an await: see `sqlite_file_engine` and `projection/group_commit.py`.)
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def sqlite_file_engine(engine: AsyncEngine) -> sa.Engine | None:
    """A synchronous engine of one connection on `engine`'s SQLite file, tuned alike; None for
    another database or an in-memory one (which exists only on the connection that made it)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    own = sa.create_engine(
        url.set(drivername="sqlite"),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
    event.listen(own, "connect", _tune_sqlite)
    return own


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded rows usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def out_of_reach(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached (worth retrying until it is back),
    rather than that it refused what was sent (retrying sends the same thing again)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError)

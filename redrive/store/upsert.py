"""`INSERT … ON CONFLICT` for whichever dialect the session talks to."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """The PostgreSQL or SQLite `insert` construct for `table` (both offer `on_conflict_do_*`)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)

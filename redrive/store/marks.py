"""Maintenance marks: where a maintenance step resumes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.store.models import MaintenanceMark
from redrive.store.upsert import dialect_insert


class MarkRepository:
    """Marks within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> datetime | None:
        """Where step `name` got to, if it ever completed."""
        mark = await self.session.get(MaintenanceMark, name)
        return mark.at if mark is not None else None

    async def set(self, name: str, at: datetime) -> None:
        """Step `name` has got to `at`."""
        statement = dialect_insert(self.session, MaintenanceMark).values(name=name, at=at)
        await self.session.exec(statement.on_conflict_do_update(index_elements=["name"], set_={"at": at}))

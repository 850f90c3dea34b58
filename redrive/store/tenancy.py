"""Row-level security on PostgreSQL: whose dead letters a transaction may see.

The `dead_letters` policy admits rows whose `app_id` equals the transaction's `redrive.tenant`
setting, or every row when it is `*` (the worker and maintenance). A transaction that sets nothing
sees nothing. SQLite has no row-level security; the repositories' own filters are all it has.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

ALL_TENANTS = "*"
TENANT_SETTING = "redrive.tenant"


async def scope_to(session: AsyncSession, tenant: str) -> None:
    """Limit the session's current transaction to `tenant`'s rows (`ALL_TENANTS` for every tenant)."""
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        await connection.execute(sa.select(sa.func.set_config(TENANT_SETTING, tenant, True)))

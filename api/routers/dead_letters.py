"""`/v1/dead-letters`: the dead-letter queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep, TenantDep
from api.schemas import MAX_PAGE, DeadLetterPage
from api.views import dead_letter_view
from redrive.status import ErrorReason
from redrive.store.dead_letters import DeadLetterFilter, DeadLetterRepository

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


@router.get("", summary="List dead letters")
async def list_dead_letters(
    tenant: TenantDep,
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=64)] = None,
    reason: ErrorReason | None = None,
    pending: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> DeadLetterPage:
    """Newest first; `pending=true` shows only entries not replayed yet."""
    where = DeadLetterFilter(tenant, type, reason.value if reason else None, pending)
    entries = await DeadLetterRepository(session).search(where, limit)
    return DeadLetterPage(items=[dead_letter_view(entry) for entry in entries])

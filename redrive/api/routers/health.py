"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from redrive.api.deps import SessionDep, StateDep
from redrive.api.problems import Problem
from redrive.schemas import PROBLEMS

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ready"}}}},
        503: PROBLEMS[503],
    },
)
async def readyz(state: StateDep, session: SessionDep) -> dict[str, str]:
    """The database and Temporal both answer; 503 naming the one that does not."""
    await session.exec(select(1))
    if not await state.temporal.service_client.check_health():
        raise Problem(
            503, "Temporal unavailable", "Temporal reports it is not serving", headers={"Retry-After": "5"}
        )
    return {"status": "ready"}

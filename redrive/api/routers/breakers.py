"""`/v1/breakers`: circuit breakers — list them, show one, open or close one by hand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from redrive.api.deps import OperateDep, ReadDep, StateDep
from redrive.api.views import breaker_view
from redrive.breaker_policy import MAX_KEY, BreakerRef
from redrive.operations import breakers
from redrive.schemas import PROBLEMS, BreakerList, BreakerPublic, BreakerRequest

router = APIRouter(prefix="/v1/breakers", tags=["circuit breakers"], responses=PROBLEMS)
Name = Annotated[str, Path(min_length=1, max_length=64)]
Key = Annotated[
    str, Query(max_length=MAX_KEY, description="the downstream, for a breaker kept per downstream")
]


@router.get("", summary="List circuit breakers")
async def list_(
    state: StateDep, caller: ReadDep, job_type: Annotated[str | None, Query(max_length=64)] = None
) -> BreakerList:
    """Every stage's breaker (closed ones too), with its window's figures and the jobs it holds."""
    return BreakerList(items=[breaker_view(found) for found in await breakers.reports(state, job_type)])


@router.get("/{job_type}/{stage}", summary="Show a circuit breaker")
async def show(job_type: Name, stage: Name, state: StateDep, caller: ReadDep, key: Key = "") -> BreakerPublic:
    """State, since when and why, the window's attempts and failures, and how many jobs it holds."""
    return breaker_view(await breakers.report(state, BreakerRef(job_type, stage, key)))


@router.post("/{job_type}/{stage}/open", summary="Open a circuit breaker by hand", status_code=202)
async def open_(
    job_type: Name, stage: Name, body: BreakerRequest, state: StateDep, caller: OperateDep, key: Key = ""
) -> BreakerPublic:
    """Hold the stage's jobs (paused, no retries spent) until it is closed by hand; 202: the
    breaker's workflow acts on it within a moment, the body shows the breaker as it was."""
    ref = BreakerRef(job_type, stage, key)
    return breaker_view(await breakers.operate(state, caller.actor, ref, "open", body.reason))


@router.post("/{job_type}/{stage}/close", summary="Close a circuit breaker by hand", status_code=202)
async def close(
    job_type: Name, stage: Name, body: BreakerRequest, state: StateDep, caller: OperateDep, key: Key = ""
) -> BreakerPublic:
    """Close it and release the jobs it holds at its declared pace."""
    ref = BreakerRef(job_type, stage, key)
    return breaker_view(await breakers.operate(state, caller.actor, ref, "close", body.reason))

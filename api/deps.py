"""FastAPI dependencies: the shared state, a database session, and the caller's tenant."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.problems import Problem
from api.state import AppState


def get_state(request: Request) -> AppState:
    """The state built by the lifespan."""
    state: AppState = request.app.state.redrive
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A session for the request."""
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_tenant(request: Request, state: StateDep) -> str:
    """The tenant of the request's `Authorization: Bearer` key; 401 without a valid one."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise Problem(
            401,
            "Unauthorized",
            "send an API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tenant = None
    for known, owner in state.tenants_by_key.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            tenant = owner
    if tenant is None:
        raise Problem(401, "Unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
    return tenant


TenantDep = Annotated[str, Depends(get_tenant)]

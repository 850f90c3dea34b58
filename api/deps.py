"""FastAPI dependencies: the shared state, a database session, and the caller and its tenant."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Caller:
    """Who sent the request: the key's tenant and a name for the key that never reveals it."""

    tenant: str
    key_id: str

    @property
    def identity(self) -> str:
        """What retries, replays and resets record as their author."""
        return f"{self.tenant}/{self.key_id}"


def get_caller(request: Request, state: StateDep) -> Caller:
    """The caller behind the request's `Authorization: Bearer` key; 401 without a valid one."""
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
    return Caller(tenant, "key-" + hashlib.sha256(key.encode()).hexdigest()[:8])


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_tenant(caller: CallerDep) -> str:
    """The caller's tenant: every query is narrowed to it."""
    return caller.tenant


TenantDep = Annotated[str, Depends(get_tenant)]

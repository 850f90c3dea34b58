"""FastAPI dependencies: the shared state, a database session, and the caller and its tenant."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.api.problems import Problem
from redrive.api.state import AppState
from redrive.operations import Actor
from redrive.store.api_keys import ApiKeyRepository, digest


async def get_state(request: Request) -> AppState:
    """The state built by the lifespan. (Dependencies here are `async def`: FastAPI runs a plain
    `def` dependency in a thread pool, measured at a tenth of a job submission's CPU.)"""
    state: AppState = request.app.state.redrive
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A session for the request."""
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


TENANT_HEADER = "X-Redrive-Tenant"
"""An admin key acts for the tenant this header names."""


@dataclass(frozen=True)
class Caller:
    """Who sent the request: the tenant it acts for, its key's public id, and the key's scopes."""

    tenant: str
    key_id: str
    scopes: frozenset[str]

    @property
    def identity(self) -> str:
        """What retries, replays, cancels and reviews record as their author."""
        return f"{self.tenant}/{self.key_id}"

    @property
    def actor(self) -> Actor:
        """The caller as the operations know it."""
        return Actor(self.tenant, self.identity)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


BEARER = HTTPBearer(auto_error=False, description="an API key: `redrive keys create`")


async def authenticate(
    request: Request,
    state: StateDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Caller:
    """The caller behind `Authorization: Bearer <key>`; 401 without a valid key. (`_declared` puts the
    scheme in the OpenAPI document; the header is read here so every failure is problem+json.)"""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("send an API key as 'Authorization: Bearer <key>'")
    caller = _static_caller(state, token) or await _stored_caller(state, token)
    if caller is None:
        raise _unauthorized("the API key is not valid (or was revoked)")
    acting_for = request.headers.get(TENANT_HEADER)
    if acting_for is not None and acting_for != caller.tenant:
        if "admin" not in caller.scopes:
            raise Problem(
                403,
                "Forbidden",
                f"only an admin key may send {TENANT_HEADER}",
                field=f"header.{TENANT_HEADER}",
            )
        caller = Caller(acting_for, caller.key_id, caller.scopes)
    return caller


def _static_caller(state: AppState, token: str) -> Caller | None:
    found = None
    for known, key in state.static_keys.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = Caller(key.tenant, "env-" + digest(token)[:8], frozenset(key.scopes))
    return found


async def _stored_caller(state: AppState, token: str) -> Caller | None:
    async with state.sessions() as session:
        key = await ApiKeyRepository(session).authenticate(token)
    return None if key is None else Caller(key.tenant_id, key.id, frozenset(key.scopes.split(",")))


def require(scope: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets through callers whose key has `scope` (or `admin`); 403 otherwise."""

    async def check(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if scope not in caller.scopes and "admin" not in caller.scopes:
            raise Problem(
                403, "Forbidden", f"this API key lacks the '{scope}' scope; ask for a key that has it"
            )
        return caller

    return check


SubmitDep = Annotated[Caller, Depends(require("submit"))]
ReadDep = Annotated[Caller, Depends(require("read"))]
OperateDep = Annotated[Caller, Depends(require("operate"))]

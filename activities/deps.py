"""What activities need from the outside world, built once by the worker and handed in."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.store.group_commit import GroupCommit
from redrive.store.types import utcnow


@dataclass(frozen=True)
class ActivityDeps:
    """Database sessions, the batched projection writer, an HTTP client, and the clock and
    randomness (injectable for tests)."""

    sessions: async_sessionmaker[AsyncSession]
    projection: GroupCommit
    http: httpx.AsyncClient
    now: Callable[[], datetime] = utcnow
    unit_random: Callable[[], float] = field(default=random.random)

"""What activities need from the outside world, built once by the worker and handed in."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from redrive.activities.alerts.config import AlertConfig
from redrive.metrics import WorkerMetrics
from redrive.operations.services import Services
from redrive.store.projection import GroupCommit
from redrive.store.types import utcnow


@dataclass(frozen=True)
class ActivityDeps:
    """Database sessions, the batched projection writer, an HTTP client, where alerts go, and the
    clock and randomness (injectable for tests)."""

    sessions: async_sessionmaker[AsyncSession]
    projection: GroupCommit
    http: httpx.AsyncClient
    alerts: AlertConfig = field(default_factory=AlertConfig)
    temporal: Client | None = None
    """For maintenance and clean-up, which list, read and delete runs."""
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    """Where stage, job and alert counts go (the SDK's meter: served on the worker's metrics port)."""
    services: Services | None = None
    """The operations' services, for the replay campaign's steps, which replay as the API does."""
    now: Callable[[], datetime] = utcnow
    unit_random: Callable[[], float] = field(default=random.random)

    def client(self) -> Client:
        """The Temporal client, for the activities that read or change runs."""
        if self.temporal is None:
            raise RuntimeError("this activity needs a Temporal client in ActivityDeps")
        return self.temporal

    def operations(self) -> Services:
        """The operations' services, for the activities that run operations."""
        if self.services is None:
            raise RuntimeError("this activity needs the operations' Services in ActivityDeps")
        return self.services

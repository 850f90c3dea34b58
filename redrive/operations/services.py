"""What every operation works with, built once by the program that hosts them (the API's lifespan,
a worker, a test), and who is acting."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from redrive.jobtypes import JobTypeRegistry
from redrive.settings import Settings
from redrive.store.projection import GroupCommit


@dataclass(frozen=True)
class Services:
    """Settings, job types, database sessions, the batched projection writer and the Temporal client."""

    settings: Settings
    registry: JobTypeRegistry
    sessions: async_sessionmaker[AsyncSession]
    projection: GroupCommit
    temporal: Client


@dataclass(frozen=True)
class Actor:
    """Who acts: the tenant whose jobs it may touch, and the identity its actions are recorded under."""

    tenant: str
    identity: str

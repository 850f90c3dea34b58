"""What the app builds in its lifespan and every route shares."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from api.janitor import RunJanitor
from redrive.jobtypes import JobTypeRegistry
from redrive.settings import Settings, StaticKey
from redrive.store.group_commit import GroupCommit


@dataclass(frozen=True)
class AppState:
    """Settings, API keys, job types, database sessions and the batched writer of new jobs, the
    Temporal client and background clean-up."""

    settings: Settings
    static_keys: dict[str, StaticKey]
    registry: JobTypeRegistry
    sessions: async_sessionmaker[AsyncSession]
    projection: GroupCommit
    temporal: Client
    janitor: RunJanitor
    codec: PayloadCodec | None = None

"""Fixtures: real Temporal servers (dev and time-skipping), real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from redrive.binaries import temporal_test_server
from redrive.converter import DATA_CONVERTER
from redrive.store import upgrade
from tests.skipping import Stack
from tests.support import (
    Mailbox,
    register_search_attributes,
    running_api,
    running_worker,
    settings_for,
    smtp_server,
    start_dev_server,
)

POSTGRES_URL = os.environ.get("REDRIVE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
async def dev_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server on a SQLite file in WAL mode, as `redrive dev` runs it."""
    env = await start_dev_server(tmp_path_factory.mktemp("temporal") / "temporal.db")
    async with env:
        yield env


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: 30 s / 120 s / 480 s backoffs pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server()),
        data_converter=DATA_CONVERTER,
    )
    async with env:
        await register_search_attributes(env.client)
        yield env


async def _postgres_database() -> AsyncIterator[str]:
    name = f"redrive_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except OSError as error:
        if os.environ.get("REDRIVE_REQUIRE_POSTGRES") or os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({error}); set REDRIVE_TEST_POSTGRES")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{base}/{name}"
        await upgrade(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file for one test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'redrive.db'}"
    await upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database for one test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'redrive.db'}"
        await upgrade(url)
        yield url
    else:
        async for url in _postgres_database():
            yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database for one test."""
    async for url in _postgres_database():
        yield url


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) in the test process."""
    with smtp_server() as box:
        yield box


@pytest.fixture
async def stack(
    skipping_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[Stack]:
    """A worker and the API over HTTP on SQLite against the time-skipping server, alerts to `mailbox`."""
    settings = settings_for(sqlite_url, tmp_path, **mailbox.settings())
    async with (
        running_worker(skipping_env.client, settings),
        running_api(settings, skipping_env.client) as url,
    ):
        yield Stack(skipping_env, settings, url, mailbox)

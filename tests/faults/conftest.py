"""Fixtures of the fault suite: its own PostgreSQL cluster, a fresh database and stack per test, and
the per-test report printed at the end of the run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.faults.audit import Report
from tests.faults.harness import Postgres, Stack, own_postgres, running_stack

REPORTS: list[Report] = []


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of the suite's own: the tests stop and start it."""
    with own_postgres() as cluster:
        yield cluster


@pytest.fixture
async def stack(postgres: Postgres, tmp_path: Path) -> AsyncIterator[Stack]:
    """The dev server, the API and two workers, each a process, on a new database of `postgres`."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    async with running_stack(tmp_path, postgres.url.rsplit("/", 1)[0] + f"/{name}") as running:
        yield running


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """This test's figures, printed in the summary whatever the outcome."""
    found = Report(request.node.name)
    REPORTS.append(found)
    return found


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("fault suite")
    for found in REPORTS:
        terminalreporter.write_line(found.line())
        for detail in found.details[:10]:
            terminalreporter.write_line(f"    {detail}")

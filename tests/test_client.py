"""The Python client against the real API and a real worker on the dev server: every operation
answers with the API's models, and each kind of refusal is its own exception."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from redrive.client import AsyncClient, Client, Conflict, Invalid, NotFound, Unauthorized, Unavailable
from redrive.schemas import JobPublic
from tests.support import free_port, running_api, running_worker, settings_for

FAIL = {"fail": {"stage": "process", "error": "CorruptedFile"}}


@pytest.fixture
async def served(dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The API (its base URL) and a worker on the dev server, tenant `a` holding key `key-a`."""
    settings = settings_for(sqlite_url, tmp_path)
    async with running_worker(dev_env.client, settings), running_api(settings, dev_env.client) as url:
        yield url


async def test_jobs_through_the_client(served: str) -> None:
    """Submit (idempotent by key), wait, get, list and iterate, retry a dead job, cancel a finished one."""
    async with AsyncClient(served, "key-a") as redrive:
        job = await redrive.submit("demo", {}, idempotency_key="k-1")
        assert isinstance(job, JobPublic)
        assert (await redrive.submit("demo", {}, idempotency_key="k-1")).id == job.id
        done = await redrive.wait(job.id, within=60)
        assert (done.status, done.label, [s.name for s in done.stages]) == (
            "complete",
            "complete",
            ["prepare", "process", "finish"],
        )
        dead = await redrive.wait((await redrive.submit("demo", FAIL)).id, within=60)
        assert (dead.status, dead.error_type) == ("dead_letter", "CorruptedFile")
        assert [j.id for j in (await redrive.list(status="dead_letter")).items] == [dead.id]
        assert {j.id async for j in redrive.iter_jobs(page_size=1)} == {job.id, dead.id}
        retried = await redrive.retry(dead.id, reason="try again")
        assert (retried.mode, retried.from_stage, retried.reason) == ("reset", "process", "try again")
        with pytest.raises(Conflict, match="only a dead-lettered job can be retried"):
            await redrive.retry(job.id)
        with pytest.raises(Conflict):
            await redrive.cancel(job.id)


async def test_dead_letters_through_the_client(served: str, tmp_path: Path) -> None:
    """List, group, show and replay dead letters, one and in bulk (a dry run counts)."""
    breaker = tmp_path / "corrupt"
    breaker.touch()
    failing = {"fail": {**FAIL["fail"], "while_exists": str(breaker)}}
    async with AsyncClient(served, "key-a") as redrive:
        dead = [await redrive.wait((await redrive.submit("demo", failing)).id, within=60) for _ in range(2)]
        entries = (await redrive.dead_letters(pending=True)).items
        assert {entry.original_job_id for entry in entries} == {job.id for job in dead}
        (group,) = (await redrive.dead_letter_groups()).items
        assert (group.count, group.error_type) == (2, "CorruptedFile")
        shown = await redrive.dead_letter(entries[0].id)
        assert [item["error_type"] for item in shown.error_history] == ["CorruptedFile"]
        assert (await redrive.replay_many({"fingerprint": group.fingerprint}, dry_run=True)).matched == 2
        breaker.unlink()  # fixed: the replayed jobs complete instead of coming back to the queue
        assert (await redrive.replay(entries[0].id)).mode == "reset"
        bulk = await redrive.replay_many({"type": "demo", "reason": "Validation"}, reason="fixed")
        assert (bulk.matched, bulk.replayed) == (1, 1)


async def test_refusals_are_typed(served: str) -> None:
    """404, 409, 422 (with the field), 401 and an unreachable API each raise their own error."""
    async with AsyncClient(served, "key-a") as redrive:
        with pytest.raises(NotFound):
            await redrive.get("job-nope")
        with pytest.raises(Invalid) as invalid:
            await redrive.submit("demo", {"sleep_ms": -1})
        assert invalid.value.field == "body.payload.sleep_ms"
    async with AsyncClient(served, "wrong-key") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list()
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", "key-a") as nowhere:
        with pytest.raises(Unavailable):
            await nowhere.list()


async def test_the_blocking_client_has_the_same_calls(served: str) -> None:
    """`Client` answers with the same models, blocking (in a thread here: the API serves from this
    test's event loop)."""

    def use() -> None:
        with Client(served, "key-a") as redrive:
            job = redrive.submit("demo", {"sleep_ms": 1})
            assert isinstance(job, JobPublic)
            assert redrive.get(job.id).id == job.id
            assert [j.id for j in redrive.iter_jobs()] == [job.id]

    await asyncio.to_thread(use)

"""Circuit breakers on the dev server, with a real worker and the API over HTTP: a breaker opens on
its declared threshold and pauses the attempts waiting for a retry (their attempt counter stands
still), half-opens with one probe, closes and releases the held jobs paced; an operator opens and
closes one by hand; its state outlives the worker; a job that needs another stage is not held."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from redrive.operations.breakers import paused_attempt
from redrive.settings import Settings
from tests.support import eventually, job_in, running_api, running_worker, settings_for

A = {"Authorization": "Bearer key-a"}
BREAKER = """
[job_types.demo]
initial_interval = "1s"
backoff_coefficient = 1
max_retries = 3

[job_types.demo.stages.process.breaker]
window = "1m"
min_failures = 3
failure_rate = 0.5
cool_down = "{cool_down}"
max_cool_down = "{cool_down}"
resume_rate = 1.0
"""


def _settings(url: str, home: Path, cool_down: str) -> Settings:
    config = home / "redrive.toml"
    config.write_text(BREAKER.format(cool_down=cool_down))
    return settings_for(url, home, config=config)


@pytest.fixture
async def held_file(tmp_path: Path) -> Path:
    """The downstream is down while this file exists."""
    down = tmp_path / "down"
    down.touch()
    return down


def _failing(down: Path) -> dict[str, Any]:
    return {"type": "demo", "payload": {"fail": {"stage": "process", "error": "ServiceUnavailable", "while_exists": str(down)}}}


async def _breaker(http: httpx.AsyncClient, state: str) -> dict[str, Any] | None:
    body: dict[str, Any] = (await http.get("/v1/breakers/demo/process")).json()
    return body if body["state"] == state else None


async def _attempts(client: Client, job_ids: list[str]) -> dict[str, tuple[bool, int] | None]:
    return {job_id: await paused_attempt(client, "default", job_id, "process") for job_id in job_ids}


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = _settings(sqlite_url, tmp_path, "4s")
    async with (
        running_worker(dev_env.client, settings),
        running_api(settings, dev_env.client) as url,
        httpx.AsyncClient(base_url=url, headers=A, timeout=60) as http,
    ):
        yield http


async def test_breaker_opens_pauses_probes_closes_and_releases_paced(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, held_file: Path
) -> None:
    """Four jobs fail at `process`: the third failure opens the breaker, every job's stage is paused
    (attempt counters stand still), a probe fails while the downstream is down and one succeeds once
    it is up; the breaker closes and the jobs complete one a second, none dead-lettered."""
    jobs = [(await api.post("/v1/jobs", json=_failing(held_file))).json()["id"] for _ in range(4)]
    opened = await eventually(functools.partial(_breaker, api, "open"), within=30)
    assert opened["by"] == "breaker" and "attempts failed within" in opened["reason"], opened
    assert opened["failures"] >= 3

    async def all_paused() -> dict[str, tuple[bool, int] | None] | None:
        seen = await _attempts(dev_env.client, jobs)
        return seen if all(found is not None and found[0] for found in seen.values()) else None

    paused = await eventually(all_paused, within=30)
    held = (await api.get(f"/v1/jobs/{jobs[0]}")).json()["held_by_breaker"]
    assert held is not None and (held["stage"], held["how"]) == ("process", "paused"), held
    await asyncio.sleep(2.5)  # more than the 1 s backoff: a retry would have run by now
    still = await _attempts(dev_env.client, jobs)
    assert still == paused, (paused, still)
    assert (await api.get("/v1/breakers/demo/process")).json()["waiting"] == 4

    # The cool-down (4 s) ends: one probe goes through, fails (still down), and the breaker reopens.
    probing = await eventually(functools.partial(_breaker, api, "half_open"), within=30)
    await eventually(functools.partial(_breaker, api, "open"), within=30)
    moved = [job for job, seen in (await _attempts(dev_env.client, jobs)).items() if seen != paused[job]]
    assert len(moved) <= 1, moved  # the probe's job only
    assert probing["probe_job_id"] in (None, *jobs)

    held_file.unlink()  # the downstream recovers: the next probe succeeds and the breaker closes
    closed = await eventually(functools.partial(_breaker, api, "closed"), within=30)
    assert closed["reason"] == "probe succeeded", closed
    done = [await eventually(functools.partial(job_in, api, job, "complete"), within=30) for job in jobs]
    finished = sorted(job["finished_at"] for job in done)
    # Released at 1 a second (the probe's job first, on its own): the last ends ≥ 2 s after the first.
    from datetime import datetime

    spread = datetime.fromisoformat(finished[-1]) - datetime.fromisoformat(finished[0])
    assert spread.total_seconds() >= 2, finished
    assert all(job["dead_letters"] == [] and job["held_by_breaker"] is None for job in done)
    assert (await api.get("/v1/breakers/demo/process")).json()["waiting"] == 0

"""Every `redrive jobs|dlq` command against the live API (dev server, real worker), with the exit codes
scripts rely on, and `redrive doctor` against the dev server and databases in good and bad shape."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from redrive_cli.devserver import set_retention
from tests.support import Mailbox, api_client, eventually, settings_for


@dataclass(frozen=True)
class Result:
    """What one CLI run printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def redrive(*args: str, **env: str) -> Result:
    """Run `python -m redrive_cli …` without blocking the event loop that serves the API."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redrive_cli",
        *args,
        env={**os.environ, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The API and a worker; the environment that points the CLI at them as tenant a."""
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path), {}) as http:
        yield {"REDRIVE_API_URL": str(http.base_url), "REDRIVE_API_KEY": "key-a"}


async def _status(env: dict[str, str], job_id: str, wanted: str) -> bool:
    shown = await redrive("jobs", "show", job_id, "-o", "json", **env)
    return bool(shown.json()["status"] == wanted)


def _reaches(env: dict[str, str], job_id: str, wanted: str) -> Callable[[], Awaitable[bool]]:
    return lambda: _status(env, job_id, wanted)


async def test_jobs_commands(api: dict[str, str], tmp_path: Path) -> None:
    """submit, list, show, retry, cancel and review: tables for people, JSON for scripts, exit codes."""
    breaker = tmp_path / "break"
    breaker.touch()
    fail = {"stage": "process", "error": "ValidationError", "while_exists": str(breaker)}
    submitted = await redrive(
        "jobs", "submit", "demo", "--payload", json.dumps({"fail": fail}), "-o", "json", **api
    )
    assert submitted.code == 0, submitted.err
    job_id = submitted.json()["id"]
    await eventually(lambda: _status(api, job_id, "dead_letter"))

    table = await redrive("jobs", "list", "--status", "dead_letter", **api)
    assert (table.code, job_id in table.out, "counts:" in table.out) == (0, True, True)
    shown = await redrive("jobs", "show", job_id, **api)
    assert "process" in shown.out
    assert "Validation" in shown.out
    bad_payload = await redrive("jobs", "submit", "demo", "--payload", "[1]", **api)
    assert bad_payload.code == 2
    unknown = await redrive("jobs", "submit", "nope", **api)
    assert (unknown.code, "422" in unknown.err, "demo" in unknown.err) == (1, True, True)

    breaker.unlink()
    retried = await redrive("jobs", "retry", job_id, "--reason", "from the cli", "-o", "json", **api)
    assert (retried.code, retried.json()["mode"]) == (0, "reset")
    await eventually(lambda: _status(api, job_id, "complete"))
    refused = await redrive("jobs", "cancel", job_id, **api)
    assert (refused.code, "409" in refused.err) == (1, True)
    not_waiting = await redrive("jobs", "review", job_id, "--decision", "approve", **api)
    assert (not_waiting.code, "not waiting for a review" in not_waiting.err) == (1, True)

    reviewed = (await redrive("jobs", "submit", "demo_review", "-o", "json", **api)).json()["id"]
    await eventually(lambda: _status(api, reviewed, "pending_review"))
    approved = await redrive("jobs", "review", reviewed, "--decision", "approve", "--comment", "ok", **api)
    assert approved.code == 0, approved.err
    slow = (
        await redrive("jobs", "submit", "demo", "--payload", '{"sleep_ms": 60000}', "-o", "json", **api)
    ).json()
    cancelled = await redrive("jobs", "cancel", slow["id"], "--reason", "not needed", **api)
    assert (cancelled.code, "cancelling" in cancelled.out) == (0, True)


async def test_tables_never_cut_an_id(api: dict[str, str]) -> None:
    """On an 80-column terminal every id in a table is whole (the other columns wrap)."""
    jobs = [(await redrive("jobs", "submit", "demo", "-o", "json", **api)).json()["id"] for _ in range(2)]
    listed = await redrive("jobs", "list", COLUMNS="80", **api)
    assert listed.code == 0, listed.err
    assert max(map(len, listed.out.splitlines())) <= 80
    for job_id in jobs:
        assert job_id in listed.out
    shown = await redrive("jobs", "show", jobs[0], COLUMNS="80", **api)
    assert jobs[0] in shown.out


async def test_dlq_commands(api: dict[str, str], tmp_path: Path) -> None:
    """list, show, groups, replay one, a bulk replay (a campaign, followed) with a dry run first, and
    the campaign commands: list, show, a detached start, attach, and a refused pause."""
    breaker = tmp_path / "break"
    breaker.touch()
    fail = json.dumps({"fail": {"stage": "finish", "error": "ValidationError", "while_exists": str(breaker)}})
    jobs = [
        (await redrive("jobs", "submit", "demo", "--payload", fail, "-o", "json", **api)).json()["id"]
        for _ in range(3)
    ]
    for job_id in jobs:
        await eventually(_reaches(api, job_id, "dead_letter"))

    listed = (await redrive("dlq", "list", "--pending", "-o", "json", **api)).json()["items"]
    assert sorted(entry["original_job_id"] for entry in listed) == sorted(jobs)
    shown = await redrive("dlq", "show", listed[0]["id"], **api)
    assert (shown.code, "demo failure in stage finish" in shown.out) == (0, True)
    groups = (await redrive("dlq", "groups", "-o", "json", **api)).json()["items"]
    assert [group["count"] for group in groups] == [3]
    dry = await redrive("dlq", "replay", "--type", "demo", "--dry-run", **api)
    assert (dry.code, "3 pending dead letter(s) match" in dry.out) == (0, True)

    breaker.unlink()
    one = await redrive("dlq", "replay", listed[0]["id"], "--note", "one", "-o", "json", **api)
    assert (one.code, one.json()["mode"]) == (0, "reset")
    again = await redrive("dlq", "replay", listed[0]["id"], **api)
    assert again.code == 1
    bulk = await redrive("dlq", "replay", "--fingerprint", groups[0]["fingerprint"], "--rate", "50", **api)
    assert bulk.code == 0, bulk.err
    assert "2 reset" in bulk.out
    assert "finished" in bulk.out
    assert "replaying" in bulk.err  # the progress bar
    for job_id in jobs:
        await eventually(_reaches(api, job_id, "complete"))
    campaigns = (await redrive("replays", "list", "-o", "json", **api)).json()["items"]
    assert len(campaigns) == 1  # this task queue's only (the dev server is shared by the tests)
    shown_campaign = (await redrive("replays", "show", campaigns[0]["id"], "-o", "json", **api)).json()
    assert (shown_campaign["replayed"], shown_campaign["completed"]) == (2, 2)
    detached = await redrive("dlq", "replay", "--type", "demo", "--detach", **api)
    assert detached.code == 0, detached.err
    attached = await redrive("replays", "attach", detached.out.strip(), **api)
    assert (attached.code, "0 reset" in attached.out) == (0, True), attached.err
    ended = await redrive("replays", "pause", detached.out.strip(), **api)
    assert (ended.code, "has ended" in ended.err) == (1, True)
    missing = await redrive("dlq", "show", "00000000-0000-0000-0000-000000000000", **api)
    assert missing.code == 1


async def test_unreachable_api_exits_3(tmp_path: Path) -> None:
    """No API at REDRIVE_API_URL: exit 3 and a message that names the setting."""
    result = await redrive("jobs", "list", REDRIVE_API_URL="http://127.0.0.1:9", REDRIVE_API_KEY="x")
    assert (result.code, "REDRIVE_API_URL" in result.err) == (3, True)


async def test_doctor(dev_env: WorkflowEnvironment, tmp_path: Path, mailbox: Mailbox) -> None:
    """Healthy: every check ok (after the retention it flags is raised); an unmigrated database and an
    unreachable server each fail with what to run."""
    target = dev_env.client.service_client.config.target_host
    env = {"REDRIVE_TEMPORAL_ADDRESS": target, "REDRIVE_HOME": str(tmp_path / "home")}
    smtp = {
        "REDRIVE_SMTP_HOST": mailbox.host,
        "REDRIVE_SMTP_PORT": str(mailbox.port),
        "REDRIVE_ALERT_EMAILS": "ops@x",
    }
    unmigrated = await redrive("doctor", **env, **smtp)
    assert unmigrated.code == 1
    assert "run: redrive migrate" in unmigrated.out
    assert (await redrive("migrate", **env)).code == 0
    await set_retention(dev_env.client, dev_env.client.namespace, retention=timedelta(days=1))
    short = await redrive("doctor", **env, **smtp)
    assert (short.code, "--retention" in short.out) == (1, True)
    await set_retention(dev_env.client, dev_env.client.namespace)
    healthy = await redrive("doctor", **env, **smtp)
    assert healthy.code == 0, healthy.out
    assert [line.split()[0] for line in healthy.out.splitlines()] == ["ok"] * 5
    no_mail = await redrive("doctor", **env)
    assert (no_mail.code, "warn  smtp" in no_mail.out) == (0, True)
    gone = await redrive("doctor", **{**env, "REDRIVE_TEMPORAL_ADDRESS": "127.0.0.1:9"})
    assert (gone.code, "cannot connect" in gone.out) == (1, True)

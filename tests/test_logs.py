"""What `python worker.py` logs in JSON mode while jobs retry, dead-letter and complete: one JSON
object a line, each about a job carrying its ids; a retried failure is one WARNING line without a
traceback, a dead letter one ERROR line, a completed job one INFO line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from redrive.logs import JsonFormatter, TextFormatter, job_fields
from tests.support import one_dead_one_done, running_api, settings_for, worker_process_env

ROOT = Path(__file__).parent.parent
A = {"Authorization": "Bearer key-a"}
QUICK = '[job_types.demo]\ninitial_interval = "1s"\nbackoff_coefficient = 1\nmax_retries = 1\n'


@pytest.mark.timeout(120)
async def test_a_worker_logs_one_line_per_event_in_json(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """A job failing twice then dead-lettered, and one completing: two WARNING lines (no traceback),
    one ERROR line and one INFO line, every line JSON carrying the job's fields."""
    config = tmp_path / "redrive.toml"
    config.write_text(QUICK)
    settings = settings_for(sqlite_url, tmp_path, config=config)
    env = worker_process_env(dev_env.client, settings, REDRIVE_LOG_FORMAT="json")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "worker.py"), env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with (
            running_api(settings, dev_env.client) as url,
            httpx.AsyncClient(base_url=url, headers=A) as http,
        ):
            dead, done = await one_dead_one_done(http)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(worker.communicate(), timeout=60)
    lines = [json.loads(line) for line in errors.decode().splitlines() if line.strip()]  # every line JSON
    about_dead = [
        line for line in lines if line.get("job_id") == dead and line["logger"].startswith("redrive")
    ]
    assert [line["level"] for line in about_dead] == ["WARNING", "WARNING", "ERROR"], about_dead
    assert not any("exception" in line for line in lines), [line for line in lines if "exception" in line]
    failed, error = about_dead[1], about_dead[2]
    assert (failed["stage"], failed["attempt"], failed["job_type"], failed["tenant"]) == (
        "process",
        2,
        "demo",
        "a",
    )
    assert "dead-lettered in stage process: MaxRetries after 2 attempt(s)" in error["message"]
    assert "fingerprint" in error["message"]
    about_done = [
        line for line in lines if line.get("job_id") == done and line["logger"].startswith("redrive")
    ]
    assert [(line["level"], line["message"]) for line in about_done] == [("INFO", f"job {done} complete")]


def test_text_lines_carry_the_job_fields() -> None:
    """The readable format ends a line about a job with its fields; JSON carries them as keys."""
    record = logging.LogRecord("redrive.x", logging.WARNING, __file__, 1, "stage %s failed", ("a",), None)
    for key, value in job_fields(job_id="job-1", stage="a", attempt=2, tenant=None).items():
        setattr(record, key, value)
    assert TextFormatter().format(record).endswith("stage a failed [job_id=job-1 stage=a attempt=2]")
    shown: dict[str, Any] = json.loads(JsonFormatter().format(record))
    assert (shown["job_id"], shown["stage"], shown["attempt"], "tenant" in shown) == ("job-1", "a", 2, False)
    with pytest.raises(ValueError, match="not a job field"):
        job_fields(jobid="typo")

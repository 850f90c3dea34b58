"""Prometheus metrics, read over HTTP from a real API and a real `python worker.py`: the counters and
the pending gauge move by the right amounts as jobs complete, retry, dead-letter and are replayed;
both outputs and the shipped alert rules pass `promtool`."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from redrive.probes import probe_app
from tests.support import (
    Mailbox,
    api_client,
    eventually,
    free_port,
    job_in,
    last_pass,
    one_dead_one_done,
    running_api,
    settings_for,
    worker_process_env,
)

ROOT = Path(__file__).parent.parent
A = {"Authorization": "Bearer key-a"}
QUICK = '[job_types.demo]\ninitial_interval = "1s"\nbackoff_coefficient = 1\nmax_retries = 1\n'


def _samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples called `name`, by their labels."""
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def _value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for key, value in _samples(text, name).items() if wanted <= key)


API_SERIES = {
    "redrive_jobs_submitted_total",
    "redrive_replays_total",
    "redrive_dead_letters_pending",
    "redrive_breaker_state",
    "redrive_breaker_held_jobs",
}
"""The series the API serves; the others are a worker's."""


def _used() -> set[str]:
    """Every series the shipped alert rules and Grafana dashboard name."""
    shipped = (ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text()
    shipped += (ROOT / "deploy" / "grafana" / "redrive.json").read_text()
    return set(re.findall(r"\b(?:redrive|temporal)_[a-z_]+", shipped))


def _promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed; scripts/test installs it (apt-get install prometheus)")
    return subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, check=False, timeout=30
    )


def test_the_alert_rules_are_valid() -> None:
    """`promtool check rules` accepts deploy/prometheus/alerts.yaml."""
    checked = _promtool("check", "rules", str(ROOT / "deploy" / "prometheus" / "alerts.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_the_api_counts_submissions_replays_and_pending_dead_letters(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """Two jobs submitted (a repeat by key not counted), one dead: the pending gauge reads 1 until
    the replay, which the replay counter counts; `promtool check metrics` accepts the output."""
    async with api_client(dev_env.client, settings_for(sqlite_url, tmp_path), A) as http:
        ok = (await http.post("/v1/jobs", json={"type": "demo", "idempotency_key": "m-1"})).json()["id"]
        await http.post("/v1/jobs", json={"type": "demo", "idempotency_key": "m-1"})
        breaker = tmp_path / "corrupt"
        breaker.touch()
        failing = {"fail": {"stage": "process", "error": "CorruptedFile", "while_exists": str(breaker)}}
        dead = (await http.post("/v1/jobs", json={"type": "demo", "payload": failing})).json()["id"]
        await eventually(lambda: job_in(http, ok, "complete"), within=60)
        await eventually(lambda: job_in(http, dead, "dead_letter"), within=60)
        async with httpx.AsyncClient(base_url=http.base_url) as anonymous:  # no key needed
            before = (await anonymous.get("/metrics")).text
        assert _value(before, "redrive_jobs_submitted_total", job_type="demo") == 2
        assert _value(before, "redrive_dead_letters_pending", job_type="demo", reason="Validation") == 1
        breaker.unlink()  # fixed, so the retried job does not die again before the scrape
        assert (await http.post(f"/v1/jobs/{dead}/retry")).status_code == 200
        after = (await http.get("/metrics")).text
    assert _value(after, "redrive_replays_total", job_type="demo", mode="reset") == 1
    assert _value(after, "redrive_dead_letters_pending", job_type="demo") == 0
    assert {name for name in _used() & API_SERIES if name not in after} == set()
    checked = _promtool("check", "metrics", stdin=after)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def _mailed(mailbox: Mailbox) -> bool:
    return bool(mailbox.messages)


@pytest.mark.timeout(120)
async def test_a_worker_serves_its_metrics_and_the_sdks(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """On REDRIVE_METRICS_PORT: one job completed, one failing twice then dead-lettered, counted by
    stage, outcome, error type and reason, beside the SDK's own series; promtool accepts it."""
    config = tmp_path / "redrive.toml"
    config.write_text(QUICK)
    settings = settings_for(sqlite_url, tmp_path, config=config)
    port = free_port()
    env = worker_process_env(
        dev_env.client,
        settings,
        REDRIVE_METRICS_PORT=str(port),
        REDRIVE_SMTP_HOST=mailbox.host,
        REDRIVE_SMTP_PORT=str(mailbox.port),
        REDRIVE_ALERT_EMAILS="ops@example.com",
    )
    worker = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "worker.py"), env=env)
    try:
        async with (
            running_api(settings, dev_env.client) as url,
            httpx.AsyncClient(base_url=url, headers=A) as http,
        ):
            await one_dead_one_done(http)
            await eventually(lambda: _mailed(mailbox), within=60)  # the alert comes after the dead letter
            schedule = dev_env.client.get_schedule_handle(f"redrive-maintenance-{settings.task_queue}")
            await schedule.trigger()  # a maintenance pass, as the hourly schedule runs it
            await eventually(lambda: last_pass(dev_env.client, schedule), within=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probe:
            text = (await probe.get("/metrics")).text
            assert (await probe.get("/healthz")).json() == {"status": "ok"}
            assert (await probe.get("/readyz")).json() == {"status": "ready"}
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), timeout=60)
    assert _value(text, "redrive_jobs_completed_total", job_type="demo") == 1
    assert _value(text, "redrive_jobs_dead_lettered_total", job_type="demo", reason="MaxRetries") == 1
    failures = _value(text, "redrive_stage_failures_total", stage="process", error_type="ServiceUnavailable")
    assert failures == 2
    assert _value(text, "redrive_stage_attempts_total", stage="process", outcome="failed") == 2
    assert _value(text, "redrive_stage_attempts_total", stage="finish", outcome="success") == 1
    assert _value(text, "redrive_stage_duration_seconds_count", stage="prepare") == 2
    assert _value(text, "redrive_alerts_total", outcome="sent") == 1
    assert _value(text, "redrive_maintenance_passes_total") == 1
    assert _samples(text, "temporal_worker_task_slots_available"), "the SDK's own metrics are served too"
    missing = {name for name in _used() - API_SERIES if name not in text}
    assert missing == set(), "the rules and the dashboard name series that exist"
    checked = _promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_readiness_waits_for_the_worker_to_poll(dev_env: WorkflowEnvironment) -> None:
    """`/readyz` is 503 until the worker polls, then 200 while Temporal answers."""
    app = probe_app(dev_env.client, "http://127.0.0.1:9/metrics")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker") as probe:
        waiting = await probe.get("/readyz")
        assert (waiting.status_code, waiting.json()["status"]) == (503, "starting")
        app.state.polling["started"] = True
        assert (await probe.get("/readyz")).status_code == 200

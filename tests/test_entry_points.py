"""The processes people start: `redrive dev` brings everything up and down again and keeps its data;
`python worker.py` drains and exits on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from redrive.contracts import JobInput
from redrive.jobtypes import load_job_types
from tests.support import eventually, free_port

ROOT = Path(__file__).parent.parent


def _wait_http(url: str, within: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def dev_ports() -> dict[str, str]:
    """Free ports for the API, Temporal and its UI."""
    return {
        "REDRIVE_API_PORT": str(free_port()),
        "REDRIVE_TEMPORAL_PORT": str(free_port()),
        "REDRIVE_UI_PORT": str(free_port()),
    }


def _start_dev(home: Path, ports: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, **ports, "REDRIVE_HOME": str(home)}
    env.pop("REDRIVE_API_KEYS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "redrive_cli", "dev"],
        cwd=home.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def stop_on_exit() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to stop if a test fails midway: SIGTERM first, so `redrive dev` stops its server too."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.mark.timeout(240)
def test_redrive_dev_runs_everything_and_restarts_on_its_data(
    tmp_path: Path, dev_ports: dict[str, str], stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    """API, worker, Temporal and its UI come up; SIGTERM stops them all; a restart keeps the jobs."""
    home = tmp_path / ".redrive"
    api = f"http://127.0.0.1:{dev_ports['REDRIVE_API_PORT']}"
    dev = _start_dev(home, dev_ports)
    stop_on_exit.append(dev)
    assert _wait_http(f"{api}/readyz").json() == {"status": "ready"}
    assert _wait_http(f"http://127.0.0.1:{dev_ports['REDRIVE_UI_PORT']}/").status_code == 200
    key = (home / "dev-api-key").read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    job = httpx.post(f"{api}/v1/jobs", json={"type": "demo", "payload": {}}, headers=headers).json()
    deadline = time.monotonic() + 60
    while httpx.get(f"{api}/v1/jobs/{job['id']}", headers=headers).json()["status"] != "complete":
        assert time.monotonic() < deadline, "demo job did not complete"
        time.sleep(0.2)
    cli_env = {**os.environ, "REDRIVE_API_URL": api, "REDRIVE_API_KEY": key}  # as the banner says
    printed = _banner(dev)
    (cli,) = re.findall(r"^  (\S+) jobs list; ", printed, re.M)  # the command as printed, run from there
    listed = subprocess.run(
        [*shlex.split(cli), "jobs", "list", "-o", "json"],
        cwd=home.parent,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert [item["id"] for item in json.loads(listed.stdout)["items"]] == [job["id"]], listed.stderr

    dev.send_signal(signal.SIGTERM)
    rest, _ = dev.communicate(timeout=60)
    output = printed + rest
    assert dev.returncode == 0, output
    assert "Traceback" not in output
    assert "redrive is up in" in output
    assert "curl -s -X POST" in output
    assert f"export REDRIVE_API_URL={api} REDRIVE_API_KEY={key}" in output
    assert _refused(int(dev_ports["REDRIVE_TEMPORAL_PORT"]))
    assert _refused(int(dev_ports["REDRIVE_UI_PORT"]))

    again = _start_dev(home, dev_ports)
    stop_on_exit.append(again)
    _wait_http(f"{api}/readyz")
    _run_the_protocol_lines(_banner(again), api, headers)
    _doctor_passes_against(home, dev_ports)
    shown = httpx.get(f"{api}/v1/jobs/{job['id']}", headers=headers).json()
    assert shown["status"] == "complete"
    described = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "describe",
            "--output",
            "json",
            "-w",
            job["id"],
            "--address",
            f"127.0.0.1:{dev_ports['REDRIVE_TEMPORAL_PORT']}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (
        json.loads(described.stdout)["workflowExecutionInfo"]["status"]
        == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    )
    again.send_signal(signal.SIGINT)
    rest, _ = again.communicate(timeout=60)
    assert again.returncode == 0
    assert "Traceback" not in rest  # a dead-lettered job is one line, not a stack


def _processes_with(text: str) -> list[str]:
    """The command lines of running processes that mention `text` (here: a test's data folder)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command and str(os.getpid()) != pid:
            found.append(command)
    return found


def test_redrive_dev_refuses_a_taken_temporal_port(tmp_path: Path, dev_ports: dict[str, str]) -> None:
    """Something else on the Temporal port: one clear line naming the port and its holder, exit 1,
    and nothing started (no reuse of whatever answers there)."""
    home = tmp_path / ".redrive"
    port = int(dev_ports["REDRIVE_TEMPORAL_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        dev = _start_dev(home, dev_ports)
        output, _ = dev.communicate(timeout=60)
    assert dev.returncode == 1, output
    (line,) = output.strip().splitlines()
    assert f"port {port} (Temporal) is in use by pid {os.getpid()}" in line
    assert "REDRIVE_TEMPORAL_PORT" in line
    assert _processes_with(str(home)) == []


@pytest.mark.timeout(180)
def test_a_killed_redrive_dev_leaves_no_process(
    tmp_path: Path, dev_ports: dict[str, str], stop_on_exit: list[subprocess.Popen[str]]
) -> None:
    """kill -9 of `redrive dev`: its Temporal dev server goes too, and the ports are free again."""
    home = tmp_path / ".redrive"
    dev = _start_dev(home, dev_ports)
    stop_on_exit.append(dev)
    _wait_http(f"http://127.0.0.1:{dev_ports['REDRIVE_API_PORT']}/readyz")
    assert any("start-dev" in command for command in _processes_with(str(home)))
    dev.kill()
    dev.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while _processes_with(str(home)):
        assert time.monotonic() < deadline, _processes_with(str(home))
        time.sleep(0.2)
    assert _refused(int(dev_ports["REDRIVE_TEMPORAL_PORT"]))


def _banner(dev: subprocess.Popen[str]) -> str:
    assert dev.stdout is not None
    lines: list[str] = []
    while not lines or "Press Ctrl-C" not in lines[-1]:
        line = dev.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    return "".join(lines)


def _run_the_protocol_lines(banner: str, api: str, headers: dict[str, str]) -> None:
    """Send the protocol example's requests exactly as the banner prints them: the good PDF waits
    for review and completes once approved; the broken one dead-letters as CorruptedFile."""
    bodies = [json.loads(body) for body in re.findall(r"""-d '(\{"type": "protocol".*?\})'$""", banner, re.M)]
    assert [Path(body["payload"]["url"]).name for body in bodies] == [
        "protocol-good.pdf",
        "protocol-broken.pdf",
    ]
    good, broken = (httpx.post(f"{api}/v1/jobs", json=body, headers=headers).json()["id"] for body in bodies)
    assert _until(api, headers, good, "pending_review")["label"] == "pending_review"
    httpx.post(f"{api}/v1/jobs/{good}/review", json={"decision": "approve"}, headers=headers)
    assert _until(api, headers, good, "complete")["stages"][0]["name"] == "extract"
    assert _until(api, headers, broken, "dead_letter")["error_type"] == "CorruptedFile"


def _doctor_passes_against(home: Path, ports: dict[str, str]) -> None:
    """`redrive doctor` in the environment `redrive dev` was started with (its ports and home, no
    address or database given) finds the dev stack: every check ok but the unconfigured SMTP."""
    env = {**os.environ, **ports, "REDRIVE_HOME": str(home)}
    for name in ("REDRIVE_TEMPORAL_ADDRESS", "REDRIVE_DATABASE_URL", "TEMPORAL_ADDRESS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "redrive_cli", "doctor", "--output", "json"],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = {finding["check"]: finding["level"] for finding in json.loads(done.stdout)}
    assert findings == {
        "database": "ok",
        "smtp": "warn",
        "temporal": "ok",
        "retention": "ok",
        "search attributes": "ok",
    }, done.stdout + done.stderr


def _until(api: str, headers: dict[str, str], job_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (job := httpx.get(f"{api}/v1/jobs/{job_id}", headers=headers).json())["status"] != status:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    result: dict[str, Any] = job
    return result


@pytest.mark.timeout(120)
async def test_worker_py_drains_and_exits_on_sigterm(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    """`python worker.py` lets a running stage finish after SIGTERM (no cancellation), then exits 0."""
    client: Client = dev_env.client
    queue = f"worker-py-{os.getpid()}"
    env = {
        **os.environ,
        "REDRIVE_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "REDRIVE_DATABASE_URL": sqlite_url,
        "REDRIVE_TASK_QUEUE": queue,
        "REDRIVE_GRACEFUL_SHUTDOWN_SECONDS": "10",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "worker.py"), env=env, stdout=PIPE, stderr=STDOUT
    )
    try:
        stages = load_job_types().get("demo").plan()[:1]
        job = JobInput(
            job_id=f"drain-{os.getpid()}",
            tenant_id="a",
            job_type="demo",
            payload={"sleep_ms": 3000},
            stages=stages,
        )
        handle = await client.start_workflow(job.job_type, job, id=job.job_id, task_queue=queue)
        await eventually(lambda: _stage_started(handle))
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
        assert worker.returncode == 0, output
        assert b"draining" in output
        events = [event.event_type async for event in handle.fetch_history_events()]
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in events
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in events
        await handle.terminate("test over: no worker is left to finish the workflow")
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


async def _stage_started(handle: WorkflowHandle[Any, Any]) -> bool:
    pending = (await handle.describe()).raw_description.pending_activities
    return any(activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for activity in pending)


def test_exit_process_keeps_what_was_printed_and_logged(tmp_path: Path) -> None:
    """The entry points end with `exit_process`, which skips the interpreter's teardown (where the
    SDK can abort the process) but must not drop buffered output: `os._exit` alone loses a piped
    stdout's buffer."""
    log = tmp_path / "exit.log"
    code = (
        "import logging, logging.handlers\n"
        "from redrive.temporal import exit_process\n"
        f"target = logging.FileHandler({str(log)!r})\n"
        "logging.getLogger().addHandler(logging.handlers.MemoryHandler(100, target=target))\n"
        "logging.getLogger().warning('logged')\n"
        "print('printed')\n"
        "exit_process(3)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "printed\n"
    assert log.read_text() == "logged\n"
